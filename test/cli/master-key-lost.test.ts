import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { forgelinkInProcess } from '../support/cli-in-process.ts';
import { forgelinkCli, startServerProcess, type RunningServer } from '../support/processes.ts';

/** `forgelink serve [args]`: the exit code and output when it refuses to start; it is stopped and the test fails when it starts. */
async function refusedServe(env: NodeJS.ProcessEnv, args: string[] = []): Promise<{ code: number; output: string }> {
  let server: RunningServer;
  try {
    server = await startServerProcess(env, args);
  } catch (error) {
    const match = /^serve exited with (\d+|null):\n([\s\S]*)$/.exec((error as Error).message);
    assert.ok(match, (error as Error).message);
    return { code: Number(match[1]), output: match[2] as string };
  }
  await server.stop();
  assert.fail(`forgelink serve started:\n${server.output()}`);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

// forgelink serve runs as a real process throughout; admin rotate-key's refusals run in-process.
describe('a lost master key next to a database with sealed secrets (real CLI processes)', () => {
  let home: string;
  let gitlab: FakeGitLab;
  let env: NodeJS.ProcessEnv;
  let keyFile: string;
  let originalKey: string;
  let apiKey: string;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-lost-key-'));
    gitlab = await startFakeGitLab({ tls: true });
    env = { PATH: process.env.PATH, HOME: home, FORGELINK_DATA_DIR: join(home, 'data'), FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8' };
    keyFile = join(home, 'data', 'master.key');
    const added = await forgelinkCli(['admin', 'user', 'add', 'alice', '--json'], { env });
    assert.equal(added.code, 0, added.stderr);
    apiKey = JSON.parse(added.stdout).apiKey;
    const server = await startServerProcess(env);
    try {
      const botId = gitlab.addUser({ username: 'agent-bot' }).id;
      const token = gitlab.addToken(botId, { scopes: ['read_repository'], expiresAt: '2099-01-31' });
      const response = await fetch(`${server.url}/api/v1/connections`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token }),
      });
      assert.equal(response.status, 201, await response.text());
    } finally {
      await server.stop();
    }
    originalKey = await readFile(keyFile, 'utf8');
    await rm(keyFile);
  });

  after(async () => {
    await gitlab.close();
    await rm(home, { recursive: true, force: true });
  });

  test('serve refuses to start, names the key id and how to restore it, and writes no new key', async () => {
    const { code, output } = await refusedServe(env);
    assert.notEqual(code, 0);
    const line = output.split('\n').find((text) => text.startsWith('forgelink: '));
    assert.ok(line, output);
    assert.match(line, /master\.key is missing/);
    assert.match(line, /sealed with master key k1/);
    assert.match(line, /FORGELINK_MASTER_KEY \(the base64 key\) or FORGELINK_MASTER_KEY_FILE/);
    assert.match(line, /--new-master-key/);
    assert.equal(await exists(keyFile), false, 'no key was generated in place of the lost one');
  });

  test('admin rotate-key refuses too, and writes no key', async () => {
    const result = await forgelinkInProcess(['admin', 'rotate-key'], { env });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /^forgelink: .*master\.key is missing.*master key k1/);
    assert.equal(await exists(keyFile), false);
  });

  test('a key given in the environment or a keyring file that does not open the secrets is refused, naming the key id', async () => {
    const wrongEnv = await refusedServe({ ...env, FORGELINK_MASTER_KEY: randomBytes(32).toString('base64') });
    assert.notEqual(wrongEnv.code, 0);
    assert.match(wrongEnv.output, /^forgelink: .*sealed with master key k1, but the key k1 in FORGELINK_MASTER_KEY is not the one they were sealed with/m);

    const otherKeyring = join(home, 'other.keyring');
    await writeFile(otherKeyring, JSON.stringify({ versions: [{ id: 'k7', key: randomBytes(32).toString('base64') }] }), { mode: 0o600 });
    const wrongFile = await refusedServe({ ...env, FORGELINK_MASTER_KEY_FILE: otherKeyring });
    assert.notEqual(wrongFile.code, 0);
    assert.match(wrongFile.output, new RegExp(`^forgelink: .*sealed with master key k1, but FORGELINK_MASTER_KEY_FILE \\(${otherKeyring}\\) has no key k1`, 'm'));

    const rotate = await forgelinkInProcess(['admin', 'rotate-key'], { env: { ...env, FORGELINK_MASTER_KEY_FILE: otherKeyring } });
    assert.notEqual(rotate.code, 0);
    assert.match(rotate.stderr, /has no key k1/);
    assert.deepEqual(JSON.parse(await readFile(otherKeyring, 'utf8')).versions.map((v: { id: string }) => v.id), ['k7'], 'no version was added');
  });

  test('the restored key starts as before', async () => {
    await writeFile(keyFile, originalKey, { mode: 0o600 });
    try {
      const server = await startServerProcess(env);
      await server.stop();
      assert.doesNotMatch(server.output(), /new-master-key/);
    } finally {
      await rm(keyFile);
    }
  });

  test('--new-master-key starts with a new key that records k1 as lost; later starts need no flag', async () => {
    const server = await startServerProcess(env, ['--new-master-key']);
    try {
      assert.match(server.output(), /Started with --new-master-key: 1 secret sealed with the lost master key k1 cannot be opened/);
      const response = await fetch(`${server.url}/api/v1/connections`, { headers: { authorization: `Bearer ${apiKey}` } });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { connections: unknown[] }).connections.length, 1, 'the connection is still listed');
    } finally {
      await server.stop();
    }
    const keyring = JSON.parse(await readFile(keyFile, 'utf8'));
    assert.deepEqual(keyring.versions.map((v: { id: string }) => v.id), ['k2']);
    assert.deepEqual(keyring.lost, ['k1']);
    const again = await startServerProcess(env);
    await again.stop();
  });
});
