import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { failsWithOneLine, ok } from '../support/cli-checks.ts';
import { forgelinkInProcess } from '../support/cli-in-process.ts';
import { forgelinkCli, startServerProcess, type Result, type RunningServer } from '../support/processes.ts';

describe('forgelink keys and admin user key against a started server', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let server: RunningServer;
  let aliceKey: string;
  /** Every key value seen; none may show up anywhere but where it is handed out. */
  const values: string[] = [];
  const outputs: Result[] = [];

  /** `forgelink <args>` as alice (or `key`) in this process; with `process`, as a real process. */
  async function cli(args: string[], options: { key?: string; stdin?: string; process?: true } = {}): Promise<Result> {
    const result = await (options.process ? forgelinkCli : forgelinkInProcess)(args, {
      env: { ...env, FORGELINK_SERVER: server?.url, FORGELINK_API_KEY: options.key ?? aliceKey },
      ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    });
    outputs.push(result);
    return result;
  }

  /** A new key of alice's, by `keys create --json`. */
  async function created(name: string): Promise<{ id: string; name: string; key: string; createdAt: string }> {
    const result = JSON.parse(ok(await cli(['keys', 'create', name, '--json'])).stdout);
    values.push(result.key);
    return result;
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-keys-cli-'));
    env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, 'config'), FORGELINK_DATA_DIR: join(home, 'data') };
    aliceKey = JSON.parse(ok(await forgelinkCli(['admin', 'user', 'add', 'alice', '--json'], { env })).stdout).apiKey;
    values.push(aliceKey);
    values.push(JSON.parse(ok(await forgelinkInProcess(['admin', 'user', 'add', 'bob', '--json'], { env })).stdout).apiKey);
    server = await startServerProcess(env);
  });

  after(async () => {
    await server?.stop();
    await rm(home, { recursive: true, force: true });
  });

  test('keys create prints the key once; --json is exactly {id, name, key, createdAt}; the key works', async () => {
    const human = ok(await cli(['keys', 'create', 'laptop'], { process: true }));
    const key = /API key \(shown once, store it now\): (flk_\S+)/.exec(human.stdout)?.[1];
    assert.ok(key !== undefined, human.stdout);
    values.push(key);
    assert.match(human.stdout, /^Created API key "laptop" \(key_[0-9a-f]{20}\)\./);

    const json = await created('ci runner');
    assert.deepEqual(Object.keys(json).sort(), ['createdAt', 'id', 'key', 'name']);
    assert.equal(json.name, 'ci runner');
    assert.match(json.key, /^flk_/);
    const list = JSON.parse(ok(await cli(['keys', 'list', '--json'], { key: json.key })).stdout);
    assert.ok(list.keys.some((k: { id: string }) => k.id === json.id));
  });

  test('keys list shows a table with id, name, prefix, created and last used, marks the key in use, and no key', async () => {
    const ci = await created('deploy');
    const table = ok(await cli(['keys', 'list'], { key: ci.key })).stdout;
    const lines = table.trimEnd().split('\n');
    assert.match(lines[0] as string, /^ID +NAME +PREFIX +CREATED \(UTC\) +LAST USED \(UTC\)$/);
    assert.match(table, /key_[0-9a-f]{20} +initial +flk_[A-Za-z0-9_-]{4}… +\d{4}-\d\d-\d\d \d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d/);
    assert.match(table, new RegExp(`${ci.id} +deploy +${ci.key.slice(0, 8)}… +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d +\\(used by this CLI\\)`));
    for (const value of values) assert.ok(!table.includes(value));

    const json = JSON.parse(ok(await cli(['keys', 'list', '--json'])).stdout);
    assert.deepEqual(Object.keys(json), ['keys']);
    for (const key of json.keys) assert.deepEqual(Object.keys(key).sort(), ['createdAt', 'id', 'lastUsedAt', 'name', 'prefix']);
    assert.deepEqual(
      json.keys.map((k: { name: string }) => k.name),
      ['initial', 'laptop', 'ci runner', 'deploy'],
    );
  });

  test('keys revoke: the key is refused on its next use; revoking the key in use says so', async () => {
    const spare = await created('spare');
    assert.match(ok(await cli(['keys', 'revoke', spare.id])).stdout, new RegExp(`^Revoked ${spare.id}; it no longer works\\.`));
    failsWithOneLine(await cli(['keys', 'list'], { key: spare.key }), /API key is not valid/);

    const own = await created('own');
    const result = ok(await cli(['keys', 'revoke', own.id, '--json'], { key: own.key }));
    assert.deepEqual(JSON.parse(result.stdout), { id: own.id, revoked: true });
    failsWithOneLine(await cli(['keys', 'list'], { key: own.key }), /API key is not valid/);
    const again = await created('own again');
    assert.match(ok(await cli(['keys', 'revoke', again.id], { key: again.key })).stdout, /It was the key this CLI uses: store another with "forgelink login"/);
  });

  test('bad input and unknown ids fail with one line', async () => {
    failsWithOneLine(await cli(['keys', 'create', '   ']), /Give the key a name.*\(name\)/);
    failsWithOneLine(await cli(['keys', 'create', 'x'.repeat(65)]), /at most 64 characters/);
    failsWithOneLine(await cli(['keys', 'create', 'laptop']), /already have a key named "laptop"/);
    failsWithOneLine(await cli(['keys', 'revoke', 'key_nope']), /None of your keys has the id key_nope/);
  });

  test("bob cannot revoke alice's key, and does not see it", async () => {
    const bobKey = values[1] as string;
    const alices = await created('alice only');
    failsWithOneLine(await cli(['keys', 'revoke', alices.id], { key: bobKey }), /None of your keys/);
    assert.ok(!ok(await cli(['keys', 'list'], { key: bobKey })).stdout.includes(alices.id));
    ok(await cli(['keys', 'list'], { key: alices.key }));
  });

  test('admin user key makes a working key for a user, locally, while the server runs; the audit log says by admin', async () => {
    const human = ok(await forgelinkCli(['admin', 'user', 'key', 'alice', '--name', 'recovery'], { env }));
    assert.match(human.stdout, /^Created API key "recovery" \(key_[0-9a-f]{20}\) for alice\./);
    const key = /API key \(shown once, store it now\): (flk_\S+)/.exec(human.stdout)?.[1] as string;
    values.push(key);
    const me = ok(await cli(['keys', 'list', '--json'], { key }));
    assert.ok(JSON.parse(me.stdout).keys.some((k: { name: string }) => k.name === 'recovery'));

    const json = JSON.parse(ok(await forgelinkInProcess(['admin', 'user', 'key', 'bob', '--json'], { env })).stdout);
    values.push(json.key);
    assert.deepEqual(Object.keys(json).sort(), ['createdAt', 'id', 'key', 'name', 'user']);
    assert.equal(json.user.name, 'bob');
    assert.match(json.name, /^issued \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    assert.equal(JSON.parse(ok(await cli(['keys', 'list', '--json'], { key: json.key })).stdout).keys.length, 2);

    const audit = JSON.parse(ok(await cli(['audit', '--json'])).stdout);
    const issued = audit.entries.find((entry: { details: { name?: string } }) => entry.details.name === 'recovery');
    assert.equal(issued.action, 'api_key.created');
    assert.equal(issued.actor, 'admin');
    assert.equal(issued.details.via, 'admin');
    assert.match(ok(await cli(['audit'])).stdout, /api_key\.revoked +key_[0-9a-f]{20}/);

    const unknown = await forgelinkInProcess(['admin', 'user', 'key', 'nobody'], { env });
    assert.notEqual(unknown.code, 0);
    assert.equal(unknown.stderr, 'forgelink: There is no user named nobody.\n');

    // Adding a user who exists is what someone who lost the key tries first: the refusal names the command that helps.
    const again = await forgelinkInProcess(['admin', 'user', 'add', 'alice', '--json'], { env });
    assert.equal(again.code, 1);
    const message = 'A user named alice already exists. To give alice a new API key: forgelink admin user key alice';
    assert.equal(again.stderr, `forgelink: ${message}\n`);
    assert.deepEqual(JSON.parse(again.stdout), { error: { code: 'user_exists', message, field: 'name' } });
  });

  test('no key value is in the server log or where it was not handed out', () => {
    const log = server.output();
    for (const value of values) assert.ok(!log.includes(value), 'a key value reached the server log');
    for (const result of outputs) assert.ok(!values.some((value) => result.stderr.includes(value)));
  });
});
