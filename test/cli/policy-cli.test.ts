import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { failsWithOneLine, ok } from '../support/cli-checks.ts';
import { forgelinkCli, startServerProcess, type Result, type RunningServer } from '../support/processes.ts';

/** `forgelink connections set` and `forgelink run --no-…` against a started server whose operator allows merging. */
describe('forgelink connections set / run --no-merge against a started server (the real main.ts wiring)', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let gitlab: FakeGitLab;
  let server: RunningServer;
  let connectionId: string;

  const cli = (args: string[], stdin?: string): Promise<Result> => forgelinkCli(args, { env, ...(stdin === undefined ? {} : { stdin }) });

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-policy-cli-'));
    env = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      FORGELINK_DATA_DIR: join(home, 'data'),
      FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
      FORGELINK_POLICY: '{"allowMerge":true}',
    };
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    const botId = gitlab.addUser({ username: 'policy-bot', name: 'Policy Bot' }).id;
    gitlab.addProject({ path: 'acme/cli', members: [{ userId: botId, accessLevel: 30 }] });
    const apiKey = JSON.parse(ok(await cli(['admin', 'user', 'add', 'alice', '--json'])).stdout).apiKey;
    server = await startServerProcess(env);
    ok(await cli(['login', '--server', server.url], `${apiKey}\n`));
    const token = gitlab.addToken(botId, { scopes: ['api'], expiresAt: '2027-06-30', name: 'cli agent' });
    connectionId = JSON.parse(ok(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile ?? '', '--token-stdin', '--json'], token)).stdout).id;
  });

  after(async () => {
    await server?.stop();
    await gitlab?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('a connection set to direct with merging off shows it; its runs cannot narrow a policy they have no broker for', async () => {
    failsWithOneLine(await cli(['connections', 'set', connectionId, '--credentials', 'sometimes']), /--credentials: expected brokered, direct or default/);
    failsWithOneLine(await cli(['connections', 'set', connectionId]), /give --credentials or a policy flag/);
    const set = JSON.parse(ok(await cli(['connections', 'set', connectionId, '--credentials', 'direct', '--no-merge', '--json'])).stdout);
    assert.equal(set.credentials, 'direct');
    assert.deepEqual(set.policy, { allowMerge: false });
    assert.match(ok(await cli(['connections', 'show', connectionId])).stdout, /\n {2}Runs: +credentials direct; policy as the operator allows, but no merge\n/);
    // A direct run holds the real token: narrowing it is refused, naming the field, before anything is queued.
    failsWithOneLine(await cli(['run', '--connection', connectionId, '--project', 'acme/cli', '--no-tags', '--', 'true']), /direct run .* \(policy\)\n$/);

    const reset = JSON.parse(ok(await cli(['connections', 'set', connectionId, '--credentials', 'default', '--merge', '--json'])).stdout);
    assert.equal(reset.credentials, null);
    assert.deepEqual(reset.policy, {});
    assert.match(ok(await cli(['connections', 'show', connectionId])).stdout, /\n {2}Runs: +credentials as the server's default; policy as the operator allows\n/);
  });

  test('run --no-merge narrows what the operator allows, and the run records it', async () => {
    const run = JSON.parse(ok(await cli(['run', '--connection', connectionId, '--project', 'acme/cli', '--no-merge', '--json', '--', 'true'])).stdout);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.credentials, 'brokered');
    assert.deepEqual(run.policy.options, { allowTags: false, allowMerge: false, readOtherProjects: false });
    const plain = JSON.parse(ok(await cli(['run', '--connection', connectionId, '--project', 'acme/cli', '--json', '--', 'true'])).stdout);
    assert.deepEqual(plain.policy.options, { allowTags: false, allowMerge: true, readOtherProjects: false });
    assert.match(ok(await cli(['runs', 'show', run.id])).stdout, /\n {2}Allowed: +its own branches only\n/);
  });
});
