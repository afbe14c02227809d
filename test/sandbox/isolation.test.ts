import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { run, sandboxFixture, sh } from './helpers.ts';

const NO_NETWORK = { allow: [] };

test('a command gets exactly the given environment plus the proxy variables, as a non-root uid', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({ runId: 'env', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  process.env.FORGELINK_SANDBOX_TEST_SECRET = 'host-secret-value';
  t.after(() => delete process.env.FORGELINK_SANDBOX_TEST_SECRET);

  const result = await run(session, ['/usr/bin/env', '-0'], { env: { GREETING: 'hello world', MARK: box.marker, NO_PROXY: 'example.com' } });
  assert.equal(result.exitCode, 0, result.stderr);
  const env = Object.fromEntries(
    result.stdout
      .split('\0')
      .filter((line) => line !== '')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  assert.deepEqual(env, {
    GREETING: 'hello world',
    MARK: box.marker,
    HOME: '/home/agent',
    PATH: '/opt/forgelink/bin:/usr/local/bin:/usr/bin:/bin',
    HTTP_PROXY: 'http://127.0.0.1:3128',
    HTTPS_PROXY: 'http://127.0.0.1:3128',
    ALL_PROXY: 'http://127.0.0.1:3128',
    http_proxy: 'http://127.0.0.1:3128',
    https_proxy: 'http://127.0.0.1:3128',
    all_proxy: 'http://127.0.0.1:3128',
    // The caller's NO_PROXY is overridden: everything goes through the proxy.
    NO_PROXY: '',
    no_proxy: '',
    NODE_USE_ENV_PROXY: '1',
    PWD: '/workspace',
  });

  const who = await run(session, sh('id -u; id -g; id -un; grep ^CapEff /proc/self/status; hostname; echo "$HOME"; pwd', box.marker), {
    env: { PATH: '/usr/bin:/bin', MARK: box.marker },
  });
  assert.equal(who.stdout, '1000\n1000\nagent\nCapEff:\t0000000000000000\nforgelink-sandbox\n/home/agent\n/workspace\n');
});

test('the workspace is writable and the host stays out of sight', async (t) => {
  const box = await sandboxFixture(t);
  const mine = await box.workspace('mine');
  const theirs = await box.workspace('theirs');
  await writeFile(path.join(theirs, 'secret.txt'), 'another run\n');
  const session = await box.create({ runId: 'iso', workspaceDir: mine, allowlist: [], outboundPolicy: NO_NETWORK });

  const script = `
    for p in /root /work /home/cloudsdk /var/run/docker.sock /etc/shadow /etc/resolv.conf /etc/gitconfig /etc/ssl/private "${box.base}" "${box.stateDir}" "${theirs}" "${process.cwd()}"; do
      if [ -e "$p" ]; then echo "visible: $p"; fi
    done
    ls /home
    echo created > /workspace/made-inside.txt && mkdir -p /workspace/dir/sub && echo ok-workspace
    touch /usr/x 2>/dev/null || echo ro-usr
    touch /etc/x 2>/dev/null || echo ro-etc
    touch /newfile 2>/dev/null || echo ro-root
    touch /dev/x 2>/dev/null || echo ro-dev
    unshare -U true 2>/dev/null || echo no-userns
    ls -A /proc | grep -E '^[0-9]+$' | wc -l | tr -d ' '
  `;
  const result = await run(session, sh(script, box.marker), { env: { MARK: box.marker } });
  assert.equal(result.exitCode, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  assert.deepEqual(lines.slice(0, -1), ['agent', 'ok-workspace', 'ro-usr', 'ro-etc', 'ro-root', 'ro-dev', 'no-userns']);
  // Only the sandbox's own processes are in its /proc: pid 1, the wrapper, socat, sh, ls, grep, wc, tr.
  assert.ok(Number(lines.at(-1)) < 12, `the sandbox sees ${lines.at(-1)} processes`);

  // The agent's files belong to forgelink's uid on the host, so forgelink can read and remove them.
  const made = await stat(path.join(mine, 'made-inside.txt'));
  assert.equal(made.uid, process.getuid?.());
  assert.deepEqual((await readdir(theirs)).sort(), ['secret.txt']);
});

test('files appear read-only at their paths; the home directory lasts for the session', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({
    runId: 'files',
    workspaceDir: await box.workspace(),
    allowlist: [],
    outboundPolicy: NO_NETWORK,
    files: { '/etc/forgelink/ca-bundle.pem': 'PEM TEXT\n', '/etc/forgelink/gitconfig': '[user]\n\tname = Agent\n' },
  });
  const first = await run(
    session,
    sh('cat /etc/forgelink/ca-bundle.pem; git config --file /etc/forgelink/gitconfig user.name; echo x >> /etc/forgelink/gitconfig || echo read-only; echo kept > ~/note; echo tmp > /tmp/t', box.marker),
    { env: { PATH: '/usr/bin:/bin', MARK: box.marker } },
  );
  assert.equal(first.stdout, 'PEM TEXT\nAgent\nread-only\n');
  const second = await run(session, sh('cat ~/note; cat /tmp/t 2>/dev/null || echo fresh-tmp', box.marker), { env: { MARK: box.marker } });
  assert.equal(second.stdout, 'kept\nfresh-tmp\n');
});

test('destroy stops the proxy, removes the run dir and refuses further commands', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({ runId: 'gone', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  const runDir = path.join(box.stateDir, 'gone');
  const socket = path.join(runDir, 'runtime', 'proxy.sock');
  assert.equal((await stat(runDir)).mode & 0o777, 0o700);
  assert.ok((await lstat(socket)).isSocket());
  await session.destroy();
  await session.destroy();
  await assert.rejects(stat(runDir), { code: 'ENOENT' });
  await assert.rejects(
    new Promise((resolve, reject) => connect(socket).once('connect', resolve).once('error', reject)),
    { code: 'ENOENT' },
  );
  await assert.rejects(session.exec({ command: ['true'], env: {}, timeoutMs: 1000 }), { code: 'sandbox_destroyed' });
});

test('bad options are refused with the field named, before anything is made', async (t) => {
  const box = await sandboxFixture(t);
  const workspaceDir = await box.workspace();
  const base = { runId: 'bad', workspaceDir, allowlist: [], outboundPolicy: NO_NETWORK };
  await assert.rejects(box.create({ ...base, runId: '../escape' }), { field: 'runId' });
  await assert.rejects(box.create({ ...base, allowlist: ['gitlab.com:99999'] }), { field: 'allowlist' });
  await assert.rejects(box.create({ ...base, workspaceDir: 'relative' }), { field: 'workspaceDir' });
  await assert.rejects(box.create({ ...base, files: { '/workspace/x': 'y' } }), { field: 'files' });
  await assert.rejects(box.create({ ...base, limits: { processes: 0 } }), { field: 'limits.processes' });
  const session = await box.create(base);
  await assert.rejects(box.create(base), { code: 'sandbox_exists' });
  await assert.rejects(session.exec({ command: [], env: {}, timeoutMs: 1000 }), { field: 'command' });
  await assert.rejects(session.exec({ command: ['true'], env: { 'A=B': 'x' }, timeoutMs: 1000 }), { field: 'env' });
  await assert.rejects(session.exec({ command: ['true'], env: { A: 'x\0y' }, timeoutMs: 1000 }), { field: 'env' });
  await assert.rejects(session.exec({ command: ['true'], env: {}, cwd: 'workspace', timeoutMs: 1000 }), { field: 'cwd' });
});

test("a sandbox left by a forgelink process that is gone is removed by the next create", async (t) => {
  const box = await sandboxFixture(t);
  const stale = path.join(box.stateDir, 'crashed-run');
  await mkdir(path.join(stale, 'home', 'locked'), { recursive: true });
  // pid 0 is never a process: the owner is certainly gone.
  await writeFile(path.join(stale, 'owner.json'), JSON.stringify({ pid: 0, start: '1' }));
  const unrelated = path.join(box.stateDir, 'not-a-sandbox');
  await mkdir(unrelated);
  await box.create({ runId: 'next', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  assert.deepEqual((await readdir(box.stateDir)).sort(), ['next', 'not-a-sandbox']);
  await rm(unrelated, { recursive: true });
});

test("the command's exit status comes back as it is", async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({ runId: 'status', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  const env = { MARK: box.marker };
  assert.equal((await run(session, sh('exit 7', box.marker), { env })).exitCode, 7);
  const missing = await run(session, ['no-such-agent', box.marker], { env });
  assert.equal(missing.exitCode, 127);
  assert.match(missing.stderr, /no-such-agent: not found/);
  // Killed by a signal: the shell convention, 128 + the signal's number.
  assert.equal((await run(session, sh('kill -9 $$', box.marker), { env })).exitCode, 137);
  const cwd = await run(session, sh('pwd', box.marker), { env, cwd: '/tmp' });
  assert.equal(cwd.stdout, '/tmp\n');
});
