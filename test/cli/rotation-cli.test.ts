import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { forgelinkInProcess } from '../support/cli-in-process.ts';
import { forgelinkCli, startServerProcess, type Result, type RunningServer } from '../support/processes.ts';

function daysFromToday(days: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + days * 86_400_000).toISOString().slice(0, 10);
}

describe('forgelink connections rotation / rotate against a started server (the real main.ts wiring)', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let gitlab: FakeGitLab;
  let server: RunningServer;
  let botId: number;
  const tokens: string[] = [];

  /** `forgelink <args>` in this process; `cliProcess` as a real process. */
  const cli = (args: string[], stdin?: string): Promise<Result> => forgelinkInProcess(args, { env, ...(stdin === undefined ? {} : { stdin }) });
  const cliProcess = (args: string[]): Promise<Result> => forgelinkCli(args, { env });

  function ok(result: Result): Result {
    assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
    return result;
  }

  function failsWithOneLine(result: Result, pattern: RegExp): void {
    assert.notEqual(result.code, 0);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, pattern);
  }

  async function connect(scopes: string[], days: number): Promise<{ id: string; token: string }> {
    const token = gitlab.addToken(botId, { scopes, expiresAt: daysFromToday(days), name: 'cli agent' });
    tokens.push(token);
    const result = ok(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile ?? '', '--token-stdin', '--json'], token));
    return { id: JSON.parse(result.stdout).id, token };
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-rotation-cli-'));
    env = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      FORGELINK_DATA_DIR: join(home, 'data'),
      FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
    };
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'cli-bot', name: 'CLI Bot' }).id;
    const apiKey = JSON.parse(ok(await cli(['admin', 'user', 'add', 'alice', '--json'])).stdout).apiKey;
    server = await startServerProcess(env);
    ok(await cli(['login', '--server', server.url], `${apiKey}\n`));
  });

  after(async () => {
    await server?.stop();
    await gitlab?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('opt in, see it in connections show, a check rotates the due token, rotate rotates again; no token anywhere', async () => {
    const { id, token: first } = await connect(['api'], 3);
    const enabled = ok(await cli(['connections', 'rotation', id, '--enable', '--lifetime', '30d', '--threshold', '1w']));
    assert.match(enabled.stdout, /rotation on: a new token for 30 days when 7 or fewer are left/);
    assert.match(ok(await cli(['connections', 'show', id])).stdout, /Rotation: +on: a new token for 30 days when 7 or fewer are left\n/);
    assert.deepEqual(JSON.parse(ok(await cli(['connections', 'show', id, '--json'])).stdout).rotation, {
      enabled: true,
      lifetimeDays: 30,
      thresholdDays: 7,
      lastRotatedAt: null,
    });

    const before = gitlab.rotationCount();
    const checked = ok(await cli(['connections', 'check', id]));
    assert.match(checked.stdout, new RegExp(`Expires: +${daysFromToday(30)} \\(in 30 days\\)`));
    assert.match(checked.stdout, /Rotation: +on: .*; last rotated \d{4}-/);
    assert.equal(gitlab.rotationCount() - before, 1);
    assert.equal(gitlab.tokenInfo(first).revoked, true);
    const [, second] = gitlab.tokenFamily(first);
    assert.ok(second && !second.revoked);
    tokens.push(second.token);

    const rotated = ok(await cliProcess(['connections', 'rotate', id]));
    assert.match(rotated.stdout, new RegExp(`^Rotated ${id}; the new token expires ${daysFromToday(30)} \\(in 30 days\\)\\.\\n$`));
    assert.equal(gitlab.rotationCount() - before, 2);
    const family = gitlab.tokenFamily(first);
    assert.deepEqual(family.map((t) => t.revoked), [true, true, false]);
    tokens.push(family[2]?.token ?? '');

    assert.match(ok(await cli(['connections', 'rotation', id, '--disable'])).stdout, /rotation off; last rotated/);
    const audit = ok(await cli(['audit', '--connection', id])).stdout;
    assert.match(audit, /token\.rotated/);

    // No token in what the CLI printed, the server's output or the data directory.
    let everything = server.output() + enabled.stdout + checked.stdout + rotated.stdout + audit;
    for (const name of await readdir(join(home, 'data'), { recursive: true })) {
      everything += await readFile(join(home, 'data', String(name))).then((bytes) => bytes.toString('latin1'), () => '');
    }
    for (const token of tokens) assert.ok(!everything.includes(token), 'a token leaked');
  });

  test('refusals are one line naming the flag', async () => {
    const { id } = await connect(['read_repository', 'write_repository'], 20);
    failsWithOneLine(await cli(['connections', 'rotation', id, '--enable']), /api or self_rotate.*\(--enable\)/);
    failsWithOneLine(await cli(['connections', 'rotate', id]), /api or self_rotate/);
    const { id: capable } = await connect(['self_rotate', 'read_repository'], 20);
    failsWithOneLine(await cli(['connections', 'rotation', capable, '--enable', '--lifetime', '400d']), /--lifetime/);
    failsWithOneLine(await cli(['connections', 'rotation', capable, '--enable', '--lifetime', '10d', '--threshold', '10d']), /--threshold/);
    failsWithOneLine(await cli(['connections', 'rotation', capable, '--enable', '--lifetime', 'soon']), /--lifetime: expected a number of days/);
    failsWithOneLine(await cli(['connections', 'rotation', capable]), /give either --enable or --disable/);
    failsWithOneLine(await cli(['connections', 'rotate', 'con_nope']), /No connection/);
  });
});
