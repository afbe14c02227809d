import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { COMMAND_LIMITS } from '../../src/runs/index.ts';
import { hashPassword } from '../../src/server/web/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { forgelinkCli } from '../support/processes.ts';
import { startReverseProxy } from '../support/reverse-proxy.ts';
import { csrfOf, webClient } from '../web/client.ts';

const EXPLOIT = 'alicegl/playground/../../acme/platform/api';

/** Paths that must never reach git: each would resolve to another project, or out of the `/gitlab` subpath. */
const BAD_PATHS = [
  EXPLOIT,
  'alicegl/playground/../../../acme/platform/api',
  'x/../../../gitlab/acme/platform/api',
  'acme/platform/api/..',
  'acme/./platform/api',
  'acme//platform/api',
  '/acme/platform/api',
  'acme/platform/api.git',
  'acme/platform/%2e%2e/api',
  'acme/platform/api?x=1',
  '-acme/platform/api',
  '0',
];

describe('run input: project paths, clone URLs and commands (real bubblewrap, fake GitLab under /gitlab over HTTPS)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let botId: number;
  let projectId: number;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    projectId = gitlab.addProject({ path: 'acme/platform/api', members: [{ userId: botId, accessLevel: 30 }] }).id;
    gitlab.addProject({ path: 'alicegl/playground', members: [{ userId: botId, accessLevel: 30 }] });
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  async function connect(scopes: string[], baseUrl = gitlab.baseUrl, caPem = gitlab.caPem): Promise<string> {
    const token = gitlab.addToken(botId, { scopes, expiresAt: '2027-06-30' });
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl, caPem, token });
    assert.equal(response.status, 201, response.text);
    return response.json.id;
  }

  async function runToEnd(body: Record<string, unknown>): Promise<{ run: any; log: string }> {
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', body);
    assert.equal(started.status, 201, started.text);
    for (;;) {
      const run = (await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`)).json;
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(run.status)) {
        const entries = (await forgelink.call(alice, 'GET', `/api/v1/runs/${run.id}/log`)).json.entries;
        return { run, log: entries.map((entry: { text: string }) => entry.text).join('') };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Paths of the git requests the fake GitLab saw (below its base path), from `from` on. */
  function gitPaths(from: number): string[] {
    return gitlab.requests.slice(from).map((request) => request.path).filter((p) => /\.git\/(info\/refs|git-upload-pack)/.test(p));
  }

  test(`the exploit from issue 10 (${EXPLOIT}) and every other dot, empty or foreign segment is a 400 naming project; nothing is queued or cloned`, async () => {
    const connectionId = await connect(['read_repository']);
    const seen = gitlab.requests.length;
    for (const project of BAD_PATHS) {
      const response = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId, project, command: ['true'] });
      assert.equal(response.status, 400, `${project}: ${response.text}`);
      assert.equal(response.json.error.field, 'project', response.text);
      assert.equal(response.json.error.code, 'invalid_project');
    }
    assert.deepEqual((await forgelink.call(alice, 'GET', '/api/v1/runs')).json.runs, []);
    await forgelink.runs.idle();
    assert.deepEqual(gitPaths(seen), []);
  });

  test('a read_repository run on a normal path clones it, from the base URL with its subpath', async () => {
    const connectionId = await connect(['read_repository']);
    const seen = gitlab.requests.length;
    const { run, log } = await runToEnd({ connectionId, project: 'acme/platform/api', command: ['git', 'remote', 'get-url', 'origin'] });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.projectPath, 'acme/platform/api');
    const cloneUrl = `${gitlab.baseUrl}/acme/platform/api.git`;
    assert.match(log, new RegExp(`^${cloneUrl.replaceAll('.', '\\.')}$`, 'm'), 'the workspace remote is not the clone URL');
    assert.ok(log.includes(`from ${cloneUrl}`), log);
    const paths = gitPaths(seen);
    assert.ok(paths.length > 0);
    assert.deepEqual(paths.filter((p) => !p.startsWith('/acme/platform/api.git/')), []);
    const audit = (await forgelink.call(alice, 'GET', `/api/v1/audit?connectionId=${connectionId}`)).json.entries;
    const finished = audit.find((entry: { action: string; runId: string }) => entry.action === 'run.finished' && entry.runId === run.id);
    assert.equal(finished?.details.projectPath, 'acme/platform/api', JSON.stringify(audit));
  });

  test('with API access the run records and clones the path GitLab reports: for a numeric id and a differently cased path', async () => {
    const connectionId = await connect(['api']);
    for (const project of [String(projectId), 'ACME/Platform/API']) {
      const seen = gitlab.requests.length;
      const { run, log } = await runToEnd({ connectionId, project, command: ['git', 'remote', 'get-url', 'origin'] });
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      assert.equal(run.project, project);
      assert.equal(run.projectPath, 'acme/platform/api');
      assert.equal(run.projectId, projectId);
      assert.ok(log.includes(`${gitlab.baseUrl}/acme/platform/api.git\n`), log);
      assert.deepEqual(gitPaths(seen).filter((p) => !p.startsWith('/acme/platform/api.git/')), []);
    }
  });

  test('GitLab reporting clone URLs for another address (external_url mismatch): the run clones through the base URL it was connected with', async () => {
    const plain = await startFakeGitLab({ basePath: '/gitlab' });
    const proxy = await startReverseProxy(plain.baseUrl, { upstreamHost: true });
    try {
      const user = plain.addUser({ username: 'bot' }).id;
      plain.addProject({ path: 'team/app', members: [{ userId: user, accessLevel: 30 }] });
      const token = plain.addToken(user, { scopes: ['api'], expiresAt: '2027-06-30' });
      const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: proxy.baseUrl, token });
      assert.equal(created.status, 201, created.text);
      const { run, log } = await runToEnd({ connectionId: created.json.id, project: 'team/app', command: ['git', 'remote', 'get-url', 'origin'] });
      assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
      assert.ok(log.includes(`${proxy.baseUrl}/team/app.git\n`), log);
    } finally {
      await proxy.close();
      await plain.close();
    }
  });

  test('oversized commands are a 400 naming command, with the limit in the message; a command at the limits runs', async () => {
    const connectionId = await connect(['api']);
    const cases: Array<[string, string[], RegExp]> = [
      ['a 900 KB argument', ['echo', 'x'.repeat(900 * 1024)], /at most 64 KiB/],
      ['100,000 arguments', ['true', ...Array.from({ length: 100_000 }, () => 'x')], /at most 1024/],
      ['five 60 KB arguments', ['echo', ...Array.from({ length: 5 }, () => 'x'.repeat(60 * 1024))], /at most 256 KiB/],
    ];
    for (const [what, command, limit] of cases) {
      const response = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId, project: 'acme/platform/api', command });
      assert.equal(response.status, 400, `${what}: ${response.text.slice(0, 300)}`);
      assert.equal(response.json.error.field, 'command');
      assert.equal(response.json.error.code, 'invalid_command');
      assert.match(response.json.error.message, limit, what);
    }
    assert.deepEqual((await forgelink.call(alice, 'GET', '/api/v1/runs')).json.runs.filter((r: { project: string; status: string }) => r.project === 'acme/platform/api' && r.status === 'queued'), []);

    const big = 'b'.repeat(COMMAND_LIMITS.maxArgBytes);
    const filler = Array.from({ length: COMMAND_LIMITS.maxArgs - 5 }, () => 'f'.repeat(150));
    const atLimits = ['sh', '-c', 'echo "args=$# big=${#1}"', 'sh', big, ...filler];
    assert.equal(atLimits.length, COMMAND_LIMITS.maxArgs);
    const { run, log } = await runToEnd({ connectionId, project: 'acme/platform/api', command: atLimits });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.match(log, new RegExp(`^args=${COMMAND_LIMITS.maxArgs - 4} big=${COMMAND_LIMITS.maxArgBytes}$`, 'm'));
  });

  test('a branch named HEAD, or anything git refuses, is a 400 naming branch', async () => {
    const connectionId = await connect(['api']);
    for (const branch of ['HEAD', '-f', 'a..b', 'x.lock', 'a~1', 'a b', 'a/', '@{-1}']) {
      const response = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId, project: 'acme/platform/api', branch, command: ['true'] });
      assert.equal(response.status, 400, `${branch}: ${response.text}`);
      assert.equal(response.json.error.field, 'branch');
    }
  });

  test('the dashboard form refuses the same paths, branches and commands next to the field', async () => {
    const connectionId = await connect(['api']);
    await forgelink.storage.users.setPasswordHash(alice.id, await hashPassword('a long dashboard password'));
    const client = webClient(forgelink.app);
    const signIn = await client.get('/sign-in');
    assert.equal((await client.post('/sign-in', { _csrf: csrfOf(signIn.text), username: 'alice', password: 'a long dashboard password', next: '/' })).status, 303);
    const page = await client.get('/runs');
    const form = { _csrf: csrfOf(page.text), intent: 'start', connectionId, project: 'acme/platform/api', branch: '', command: 'true' };
    for (const [change, field, words] of [
      [{ project: EXPLOIT }, 'project', /&quot;\.\.&quot; segment/],
      [{ branch: 'HEAD' }, 'branch', /not a valid branch name/],
      [{ command: `echo ${'x '.repeat(2000)}` }, 'command', /at most 1024 are allowed/],
    ] as const) {
      const response = await client.post('/runs', { ...form, ...change });
      assert.equal(response.status, 400, response.text.slice(0, 300));
      const error = new RegExp(`<p class="field-error" id="${field}-error">.*${words.source}`).test(response.text);
      assert.ok(error, `no error next to ${field}: ${/class="field-error"[^\n]*/.exec(response.text)?.[0]}`);
    }
  });

  test('the CLI refuses them before asking the server, naming the flag', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'forgelink-cli-input-'));
    try {
      const env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), FORGELINK_SERVER: 'http://127.0.0.1:9', FORGELINK_API_KEY: 'flk_unused' };
      for (const [args, words] of [
        [['--project', EXPLOIT, '--', 'true'], /^forgelink: --project: .*"\.\." segment/],
        [['--project', 'acme/api', '--branch', 'HEAD', '--', 'true'], /^forgelink: --branch: .*not a valid branch name/],
        [['--project', 'acme/api', '--', 'echo', 'x'.repeat(COMMAND_LIMITS.maxArgBytes + 1)], /^forgelink: command: .*at most 64 KiB/],
      ] as const) {
        const result = await forgelinkCli(['run', '--connection', 'con_x', ...args], { env });
        assert.notEqual(result.code, 0);
        assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
        assert.match(result.stderr, words);
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('a failure inside forgelink during a run', () => {
  test('ends the run as internal and is in the server log with the run id', async () => {
    const gitlab = await startFakeGitLab();
    const forgelink = await startForgelink();
    // Where run workspaces go is a regular file instead of a directory: creating a workspace fails with ENOTDIR.
    const runsDir = path.join(forgelink.workDir, 'runs');
    await rm(runsDir, { recursive: true, force: true });
    await writeFile(runsDir, '');
    try {
      const bot = gitlab.addUser({ username: 'bot' }).id;
      gitlab.addProject({ path: 'g/app', members: [{ userId: bot, accessLevel: 30 }] });
      const alice = await forgelink.addUser('alice');
      const token = gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-06-30' });
      const connection = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, token });
      assert.equal(connection.status, 201, connection.text);
      const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: connection.json.id, project: 'g/app', command: ['true'] });
      assert.equal(started.status, 201, started.text);
      await forgelink.runs.idle();
      const run = (await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`)).json;
      assert.equal(run.status, 'failed');
      assert.equal(run.error.code, 'internal');
      const lines = forgelink.logs.map((line) => JSON.parse(line)).filter((line) => line.msg === 'run failed inside forgelink');
      assert.equal(lines.length, 1, forgelink.logs.join(''));
      assert.equal(lines[0].runId, run.id);
      assert.equal(lines[0].level, 50);
      assert.match(JSON.stringify(lines[0].err), /ENOTDIR/);
    } finally {
      await rm(runsDir, { force: true });
      await forgelink.close();
      await gitlab.close();
    }
  });
});
