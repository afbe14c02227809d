import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { copyModuleClosure, copyNode } from '../support/module-copy.ts';
import { isRoot, waitForNoProcesses } from './helpers.ts';

/** An unused uid for forgelink running as a normal user (no passwd entry is needed for that). */
const USER = 4242;
const SANDBOX_INDEX = fileURLToPath(new URL('../../src/sandbox/index.ts', import.meta.url));

const SCRIPT = (sandboxIndex: string) => `
import { mkdir, stat } from 'node:fs/promises';
import { createBubblewrapDriver } from ${JSON.stringify(sandboxIndex)};
const [base, marker] = process.argv.slice(2);
await mkdir(base + '/ws', { mode: 0o700 });
const driver = createBubblewrapDriver({ stateDir: base + '/state' });
const session = await driver.create({ runId: 'plain-user', workspaceDir: base + '/ws', allowlist: [], outboundPolicy: { allow: [] }, limits: { processes: 32 } });
async function run(command) {
  let out = '';
  const exit = await session.exec({ command, env: { MARK: marker }, timeoutMs: 20000, onOutput: (chunk) => (out += chunk) });
  return { ...exit, out };
}
const who = await run(['/bin/sh', '-c', 'id -u; echo made > /workspace/made; mkdir -p ~/locked/inner && chmod 500 ~/locked', marker]);
const forks = await run(['/usr/bin/python3', '-c', 'import os, time\\nn = 0\\nwhile n < 10000:\\n    try:\\n        pid = os.fork()\\n    except OSError:\\n        break\\n    if pid == 0:\\n        time.sleep(100)\\n        os._exit(0)\\n    n += 1\\nprint(n)', marker]);
const owner = (await stat(base + '/ws/made')).uid;
await session.destroy();
console.log(JSON.stringify({ who, forks, owner, uid: process.getuid() }));
`;

/** Makes the copied code readable by everyone (a umask of 077 would leave it root's alone). */
async function chmodTree(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await chmodTree(full);
    else await chmod(full, 0o644);
  }
}

test('forgelink running as a normal user: sandboxes work, files are its own, RLIMIT_NPROC holds', { skip: !isRoot && 'needs root to switch to a test uid' }, async (t) => {
  const base = await mkdtemp(path.join(tmpdir(), 'fl-user-'));
  const marker = `flmark-user-${process.pid}`;
  t.after(() => rm(base, { recursive: true, force: true }));
  // The user cannot be assumed to reach the checkout (it may live under /root or a 0700 directory): it gets its own
  // copy of the code it runs, and of Node.
  const app = path.join(base, 'app');
  const sandboxIndex = await copyModuleClosure(SANDBOX_INDEX, app);
  const node = await copyNode(path.join(base, 'node'));
  await writeFile(path.join(app, 'run.ts'), SCRIPT(sandboxIndex), { mode: 0o644 });
  await chmodTree(app);
  await chown(base, USER, USER);
  const { stdout } = await promisify(execFile)(
    '/usr/bin/setpriv',
    [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', node, path.join(app, 'run.ts'), base, marker],
    { env: { PATH: '/usr/bin:/bin' }, cwd: base, timeout: 60_000 },
  );
  const result = JSON.parse(stdout) as {
    who: { exitCode: number; out: string };
    forks: { exitCode: number; out: string };
    owner: number;
    uid: number;
  };
  assert.equal(result.uid, USER);
  assert.equal(result.who.exitCode, 0, result.who.out);
  assert.equal(result.who.out, '1000\n');
  assert.equal(result.owner, USER, "the agent's files belong to forgelink's own uid");
  // Without a cgroup the limit is RLIMIT_NPROC over the uid's tasks: the limit on top of what it had.
  assert.ok(Number(result.forks.out) > 10 && Number(result.forks.out) < 32, result.forks.out);
  assert.deepEqual(await readdir(path.join(base, 'state')), [], 'destroy removed the run dir, read-only subdirectories and all');
  assert.deepEqual(await waitForNoProcesses(marker), []);
});
