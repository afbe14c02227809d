import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { isRoot, run, sandboxFixture, sh, waitForNoProcesses } from './helpers.ts';

const NO_NETWORK = { allow: [] };
const MiB = 1024 ** 2;

/** The largest delay of a 20 ms interval while `work` runs: how responsive this process stayed. */
async function maxLag<T>(work: Promise<T>): Promise<{ result: T; lagMs: number }> {
  let last = performance.now();
  let lagMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    lagMs = Math.max(lagMs, now - last - 20);
    last = now;
  }, 20);
  try {
    return { result: await work, lagMs };
  } finally {
    clearInterval(timer);
  }
}

test('a fork bomb is stopped by the process limit while forgelink keeps serving', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({
    runId: 'forks',
    workspaceDir: await box.workspace(),
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    limits: { processes: 64 },
  });
  // Bounded for safety: 10,000 children at most, each sleeping; the parent counts the forks that worked.
  const script = [
    'import os, time',
    'n = 0',
    'for i in range(10000):',
    '    try:',
    '        pid = os.fork()',
    '    except OSError as e:',
    '        print(f"stopped after {n}: {e.strerror}", flush=True)',
    '        break',
    '    if pid == 0:',
    '        time.sleep(1000)',
    '        os._exit(0)',
    '    n += 1',
    'else:',
    '    print("forked 10000")',
  ].join('\n');
  const bomb = run(session, ['/usr/bin/python3', '-c', script], { env: { MARK: box.marker }, timeoutMs: 30_000 });
  const host = promisify(execFile)('/bin/true');
  const { result, lagMs } = await maxLag(bomb);
  await host;
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.timedOut, false);
  const stopped = /^stopped after (\d+): Resource temporarily unavailable\n$/.exec(result.stdout);
  assert.ok(stopped, result.stdout);
  // bwrap, its pid 1, the wrapper, socat and python count too.
  assert.ok(Number(stopped[1]) > 40 && Number(stopped[1]) < 64, result.stdout);
  // A driver that waited synchronously would stall for the whole bomb; other test files share the CPU, so allow for
  // the scheduler, not for blocking.
  assert.ok(lagMs < 1_000, `the event loop stalled for ${lagMs} ms`);
  assert.deepEqual(await waitForNoProcesses(box.marker), []);
});

test('a disk filler is stopped by the file-size limit and the size-limited /tmp', async (t) => {
  const box = await sandboxFixture(t, { tmpSizeBytes: 16 * MiB });
  const workspace = await box.workspace();
  const session = await box.create({
    runId: 'disk',
    workspaceDir: workspace,
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    limits: { fileSizeBytes: 8 * MiB },
  });
  const result = await run(
    session,
    sh(
      `head -c 2G /dev/zero > /workspace/big; echo "workspace $?"
       head -c 2G /dev/zero > ~/big; echo "home $?"
       head -c 6M /dev/zero > /tmp/a && head -c 6M /dev/zero > /tmp/b; head -c 6M /dev/zero > /tmp/c; echo "tmp $?"
       head -c 2G /dev/zero > /dev/shm/big; echo "shm $?"`,
      box.marker,
    ),
    { env: { MARK: box.marker } },
  );
  // SIGXFSZ is signal 25: the shell reports 128 + 25.
  assert.equal(result.stdout, 'workspace 153\nhome 153\ntmp 1\nshm 153\n', result.stderr);
  assert.match(result.stderr, /No space left on device/);
  assert.equal((await stat(path.join(workspace, 'big'))).size, 8 * MiB);
});

test('open files are limited per process', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({
    runId: 'nofile',
    workspaceDir: await box.workspace(),
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    limits: { openFiles: 40 },
  });
  const result = await run(
    session,
    ['/usr/bin/python3', '-c', 'import resource\nfiles = []\ntry:\n    while True: files.append(open("/dev/null"))\nexcept OSError as e:\n    print(len(files), e.errno, resource.getrlimit(resource.RLIMIT_NOFILE))'],
    { env: { MARK: box.marker } },
  );
  const [count, errno, limit] = result.stdout.trim().split(' ', 3);
  assert.ok(Number(count) < 40, result.stdout);
  assert.equal(errno, '24'); // EMFILE
  assert.equal(limit, '(40,');
});

test('without a cgroup, a root forgelink cannot limit processes and says so', { skip: !isRoot }, async (t) => {
  const warnings: string[] = [];
  const box = await sandboxFixture(t, { cgroup: 'off', logger: { debug() {}, info() {}, warn: (_meta, message) => warnings.push(message) } });
  const session = await box.create({ runId: 'nocg', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  const result = await run(session, ['true'], { env: { MARK: box.marker } });
  assert.equal(result.exitCode, 0);
  assert.deepEqual(warnings, ['sandbox: no pids cgroup available and forgelink runs as root, so the process limit is not enforced']);
});

test('memory: a command past the cap is OOM-killed inside its own cgroup and reported; the next one runs', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({
    runId: 'memory',
    workspaceDir: await box.workspace(),
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    limits: { memoryBytes: 64 * MiB },
  });
  assert.equal(session.notices?.[0], 'Limits: memory 64 MiB, disk 10 GiB (workspace and home), 512 processes');
  const env = { MARK: box.marker };
  // Touches every page, 16 MiB at a time, up to 1 GiB; prints how far it got.
  const hog = await run(
    session,
    ['/usr/bin/python3', '-c', 'chunks = []\nfor i in range(64):\n    chunks.append(bytearray(16 * 1024 * 1024))\n    print((i + 1) * 16, flush=True)', box.marker],
    { env },
  );
  assert.equal(hog.limit, 'memory');
  assert.equal(hog.exitCode, 137, 'SIGKILL from the OOM killer, as the shell reports it');
  assert.ok(Number(hog.stdout.trim().split('\n').at(-1)) < 64, hog.stdout);
  const next = await run(session, sh('echo still here', box.marker), { env });
  assert.deepEqual([next.exitCode, next.limit, next.stdout], [0, undefined, 'still here\n']);
  // A failure that has nothing to do with memory is not blamed on it.
  assert.equal((await run(session, sh('exit 3', box.marker), { env })).limit, undefined);
});

test('memory without a cgroup: RLIMIT_AS per process, and the session says so', async (t) => {
  const box = await sandboxFixture(t, { memoryCgroup: 'off' });
  const session = await box.create({
    runId: 'memory-rlimit',
    workspaceDir: await box.workspace(),
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    limits: { memoryBytes: 256 * MiB },
  });
  assert.match(session.notices?.join('\n') ?? '', /memory cap is enforced per process as 256 MiB of address space \(RLIMIT_AS\)/);
  const result = await run(
    session,
    ['/usr/bin/python3', '-c', 'import resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0])\ntry:\n    b = bytearray(512 * 1024 * 1024)\nexcept MemoryError:\n    print("MemoryError")', box.marker],
    { env: { MARK: box.marker } },
  );
  assert.equal(result.stdout, `${256 * MiB}\nMemoryError\n`, result.stderr);
});

test('disk: a command that fills the workspace past the cap is stopped; the space it used is measured, not the apparent size', async (t) => {
  const box = await sandboxFixture(t, { diskCheckIntervalMs: 200 });
  const workspace = await box.workspace();
  const session = await box.create({
    runId: 'diskcap',
    workspaceDir: workspace,
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    limits: { diskBytes: 16 * MiB },
  });
  const env = { MARK: box.marker };
  // A sparse 1 GiB file holds no blocks: not a disk use.
  const sparse = await run(session, sh('truncate -s 1G /workspace/sparse && sleep 1 && echo kept', box.marker), { env });
  assert.deepEqual([sparse.exitCode, sparse.limit, sparse.stdout], [0, undefined, 'kept\n']);
  // Writes 1 MiB every 20 ms into the home directory, which counts with the workspace, then waits: the cap ends it.
  const filler = await run(session, sh('for i in $(seq 64); do head -c 1M /dev/zero >> ~/fill; sleep 0.02; done; echo "not stopped"; sleep 60', box.marker), {
    env,
    timeoutMs: 60_000,
  });
  assert.equal(filler.limit, 'disk');
  assert.equal(filler.timedOut, false);
  assert.doesNotMatch(filler.stdout, /not stopped/);
  // The session stays usable (forgelink still lists the remote refs after a disk stop) as long as a command writes nothing more.
  const reader = await run(session, sh('ls /workspace; sleep 0.5', box.marker), { env });
  assert.deepEqual([reader.exitCode, reader.limit, reader.stdout], [0, undefined, 'sparse\n']);
  const writer = await run(session, sh('head -c 8M /dev/zero > /workspace/more; sleep 60', box.marker), { env, timeoutMs: 60_000 });
  assert.equal(writer.limit, 'disk');
});

test('the run cgroups are removed with the session', { skip: !isRoot }, async (t) => {
  const box = await sandboxFixture(t);
  const name = `${process.pid}-cgroups`;
  const session = await box.create({ runId: 'cgroups', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  const find = () => promisify(execFile)('find', ['/sys/fs/cgroup', '-maxdepth', '8', '-type', 'd', '-name', name]).then(({ stdout }) => stdout.trim().split('\n').filter(Boolean));
  const made = await find();
  assert.ok(made.length > 0, 'the run has cgroups (one per controller on v1, one on v2)');
  const result = await run(session, sh('sleep 30 & echo started', box.marker), { env: { MARK: box.marker } });
  assert.equal(result.stdout, 'started\n');
  await session.destroy();
  assert.deepEqual(await find(), []);
});
