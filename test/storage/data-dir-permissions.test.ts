import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { secureDataDir } from '../../src/storage/index.ts';
import { forgelinkCli, startServerProcess, type RunningServer } from '../support/processes.ts';

type Entry = { path: string; mode: number; kind: 'dir' | 'file' };

/** Every directory and file under `root` (itself included), with its permission bits. */
async function walk(root: string): Promise<Entry[]> {
  const info = await lstat(root);
  const entries: Entry[] = [{ path: root, mode: info.mode & 0o7777, kind: info.isDirectory() ? 'dir' : 'file' }];
  if (info.isDirectory()) for (const name of await readdir(root)) entries.push(...(await walk(join(root, name))));
  return entries;
}

function assertPrivate(entries: Entry[]): void {
  // Files 0600, or 0400 where git makes its objects read-only: nothing for group or others either way.
  const loose = entries.filter((entry) => (entry.kind === 'dir' ? entry.mode !== 0o700 : entry.mode !== 0o600 && entry.mode !== 0o400));
  assert.deepEqual(
    loose.map((entry) => `${entry.path} ${entry.mode.toString(8)}`),
    [],
    'the data dir is 0700 and everything in it 0700 (directories) or 0600/0400 (files)',
  );
}

function names(entries: Entry[]): string[] {
  return entries.map((entry) => entry.path.split('/').at(-1) as string);
}

describe('the data directory is private to forgelink\'s user (real forgelink processes)', () => {
  let home: string;
  let gitlab: FakeGitLab;
  const servers: RunningServer[] = [];

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-modes-'));
    gitlab = await startFakeGitLab({ tls: true });
  });
  after(async () => {
    for (const server of servers) await server.stop();
    await gitlab.close();
    await rm(home, { recursive: true, force: true });
  });

  function envFor(dataDir: string) {
    return { PATH: process.env.PATH, HOME: home, FORGELINK_DATA_DIR: dataDir, FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8' };
  }

  async function addUser(env: NodeJS.ProcessEnv, name: string): Promise<string> {
    const added = await forgelinkCli(['admin', 'user', 'add', name, '--json'], { env });
    assert.equal(added.code, 0, added.stderr);
    return JSON.parse(added.stdout).apiKey;
  }

  test('a fresh data dir: 0700 and 0600 everywhere, the WAL and SHM files included, and runs work in it', async () => {
    const dataDir = join(home, 'fresh');
    const env = envFor(dataDir);
    const apiKey = await addUser(env, 'alice');
    const server = await startServerProcess(env);
    servers.push(server);
    // Writes while the server holds the database open: the WAL and SHM files exist now.
    await addUser(env, 'bob');
    const botId = gitlab.addUser({ username: 'agent-bot' }).id;
    gitlab.addProject({ path: 'acme/modes', members: [{ userId: botId, accessLevel: 30 }] });
    const token = gitlab.addToken(botId, { scopes: ['read_repository'], expiresAt: '2099-01-31' });
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${server.url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return (await response.json()) as any;
    };
    const connection = await call('POST', '/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    // The sandbox's files are private to the host user; the agent (uid 1000, mapped to that user) still reads them.
    const run = await call('POST', '/runs', {
      connectionId: connection.id,
      project: 'acme/modes',
      command: ['sh', '-c', 'id -un; ls -ln /etc/passwd /run/forgelink/wrapper.sh; git -C /workspace log -1 --format=commit-%h'],
    });
    const deadline = Date.now() + 90_000;
    let finished: any;
    while ((finished = await call('GET', `/runs/${run.id}`)).finishedAt === null) {
      assert.ok(Date.now() < deadline, 'the run ends');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const log = (await call('GET', `/runs/${run.id}/log`)).entries.map((entry: { text: string }) => entry.text).join('');
    assert.equal(finished.status, 'succeeded', log);
    assert.match(log, /^agent$/m);
    assert.match(log, /-r-------- .* \/etc\/passwd/);
    assert.match(log, /-r-x------ .* \/run\/forgelink\/wrapper\.sh/);
    assert.match(log, /commit-[0-9a-f]+/);

    const entries = await walk(dataDir);
    assert.ok(
      ['forgelink.db', 'forgelink.db-wal', 'forgelink.db-shm', 'master.key', 'sandboxes', 'runs'].every((name) => names(entries).includes(name)),
      names(entries).join(', '),
    );
    assertPrivate(entries);
    assert.doesNotMatch(server.output(), /made the data directory private/);
  });

  test('an existing install with 0755/0644 modes is corrected at start, and the log names what changed', async () => {
    const dataDir = join(home, 'old');
    const env = envFor(dataDir);
    await addUser(env, 'alice');
    const first = await startServerProcess(env);
    await addUser(env, 'bob');
    // kill -9 leaves the WAL and SHM files behind, as a crash would.
    const killed = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGKILL');
    await killed;
    await mkdir(join(dataDir, 'runs', 'run_left'), { recursive: true });
    for (const entry of await walk(dataDir)) await chmod(entry.path, entry.kind === 'dir' ? 0o755 : 0o644);
    const loosened = names(await walk(dataDir));
    assert.ok(['forgelink.db-wal', 'forgelink.db-shm'].every((name) => loosened.includes(name)), loosened.join(', '));

    const server = await startServerProcess(env);
    servers.push(server);
    assertPrivate(await walk(dataDir));
    const line = server
      .output()
      .split('\n')
      .find((text) => text.includes('made the data directory private'));
    assert.ok(line, server.output());
    const changed: { path: string; from: string; to: string }[] = JSON.parse(line).changed;
    for (const [name, from, to] of [
      ['', '0755', '0700'],
      ['forgelink.db', '0644', '0600'],
      ['forgelink.db-wal', '0644', '0600'],
      ['forgelink.db-shm', '0644', '0600'],
      ['master.key', '0644', '0600'],
    ]) {
      const path = name === '' ? dataDir : join(dataDir, name as string);
      assert.deepEqual(changed.find((change) => change.path === path), { path, from, to }, `${path} in ${line}`);
    }
  });
});

test('secureDataDir leaves symbolic links and what runs wrote inside their own directories alone', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'forgelink-secure-'));
  try {
    const dataDir = join(dir, 'data');
    const outside = join(dir, 'outside.pem');
    await writeFile(outside, 'ca', { mode: 0o644 });
    await mkdir(join(dataDir, 'runs', 'run_a', 'workspace'), { recursive: true, mode: 0o755 });
    await writeFile(join(dataDir, 'runs', 'run_a', 'workspace', 'README.md'), 'hi', { mode: 0o644 });
    await writeFile(join(dataDir, 'notes.txt'), 'x', { mode: 0o664 });
    await chmod(join(dataDir, 'notes.txt'), 0o4755);
    await symlink(outside, join(dataDir, 'ca.pem'));

    const { changed, failed } = await secureDataDir(dataDir);
    assert.deepEqual(failed, []);
    assert.deepEqual(changed.map((change) => change.path).sort(), [
      dataDir,
      join(dataDir, 'notes.txt'),
      join(dataDir, 'runs'),
      join(dataDir, 'runs', 'run_a'),
    ]);
    assert.equal((await stat(join(dataDir, 'notes.txt'))).mode & 0o7777, 0o700);
    assert.equal((await stat(outside)).mode & 0o777, 0o644);
    assert.equal((await stat(join(dataDir, 'runs', 'run_a', 'workspace', 'README.md'))).mode & 0o777, 0o644);
    assert.deepEqual(await secureDataDir(dataDir), { changed: [], failed: [] });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
