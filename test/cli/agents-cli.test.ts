import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { failsWithOneLine, ok } from '../support/cli-checks.ts';
import { forgelinkInProcess } from '../support/cli-in-process.ts';
import { forgelinkCli, startServerProcess, type Result, type RunningServer } from '../support/processes.ts';

describe('forgelink agents list and run --agent against a started server', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let server: RunningServer;
  let key: string;

  /** `forgelink <args>` as alice, in this process. */
  function cli(args: string[]): Promise<Result> {
    return forgelinkInProcess(args, { env: { ...env, FORGELINK_SERVER: server.url, FORGELINK_API_KEY: key } });
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-agents-cli-'));
    env = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      FORGELINK_DATA_DIR: join(home, 'data'),
      FORGELINK_AGENTS: JSON.stringify({ codex: { env: { OPENAI_BASE_URL: 'https://llm.corp.example/v1' } } }),
    };
    key = JSON.parse(ok(await forgelinkInProcess(['admin', 'user', 'add', 'alice', '--json'], { env })).stdout).apiKey;
    server = await startServerProcess(env);
  });
  after(async () => {
    await server?.stop();
    await rm(home, { recursive: true, force: true });
  });

  test('agents list shows each profile, its secrets and hosts (a gateway replaces the default host); --json as documented', async () => {
    const human = ok(await cli(['agents', 'list'])).stdout;
    assert.match(human, /^NAME\s+IMAGE\s+SECRETS\s+HOSTS$/m);
    assert.match(human, /^claude-code\s+host\s+ANTHROPIC_API_KEY\s+api\.anthropic\.com:443$/m);
    assert.match(human, /^codex\s+host\s+OPENAI_API_KEY\s+llm\.corp\.example:443$/m);
    assert.match(human, /^custom\s+host\s+-\s+-$/m);
    const json = JSON.parse(ok(await cli(['agents', 'list', '--json'])).stdout);
    assert.deepEqual(json.agents[0], { name: 'claude-code', image: 'host', secrets: ['ANTHROPIC_API_KEY'], hosts: ['api.anthropic.com:443'] });
  });

  test('run --agent with an unknown profile or no task fails with one line naming it', async () => {
    failsWithOneLine(await cli(['run', '--agent', 'nope', '--connection', 'con_x', '--project', 'g/app', 'fix it']), /^forgelink: .*agent profile "nope".*claude-code, codex, custom/);
    failsWithOneLine(await cli(['run', '--agent', 'claude-code', '--connection', 'con_x', '--project', 'g/app', ' ']), /^forgelink: task: The task is empty\./);
  });

  test('a server with a broken FORGELINK_AGENTS refuses to start, naming the variable', async () => {
    const broken = await forgelinkCli(['serve'], { env: { ...env, FORGELINK_LISTEN: '127.0.0.1:0', FORGELINK_AGENTS: '{"claude-code":{"hosts":["no host"]}}' } });
    assert.notEqual(broken.code, 0);
    assert.match(broken.stderr, /FORGELINK_AGENTS: claude-code: hosts: "no host" is not a host:port/);
  });
});
