import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { EXAMPLES_DIR } from '../support/forgelink.ts';
import { forgelinkInProcess } from '../support/cli-in-process.ts';
import { cliTestEnv, forgelinkCli, startServerProcess, type Result, type RunningServer } from '../support/processes.ts';
import { failsWithOneLine, ok } from '../support/cli-checks.ts';

describe('the CLI against a started server and the fake GitLab over HTTPS', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let gitlab: FakeGitLab;
  let server: RunningServer;
  let apiKey: string;
  let gitlabUser: number;
  const tokens: string[] = [];
  const outputs: Result[] = [];

  /**
   * `forgelink <args>` in this process; with `process`, as a real process: the commands where the process boundary
   * matters (stdin from a pipe, exit codes, stdout and stderr apart, the admin commands' local wiring).
   */
  async function cli(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv; process?: true } = {}): Promise<Result> {
    const run = options.process ? forgelinkCli : forgelinkInProcess;
    const result = await run(args, { env: { ...env, ...options.env }, ...(options.stdin === undefined ? {} : { stdin: options.stdin }) });
    outputs.push(result);
    return result;
  }

  function newToken(scopes: string[], expiresAt: string | null = '2027-03-01'): string {
    const token = gitlab.addToken(gitlabUser, { scopes, expiresAt });
    tokens.push(token);
    return token;
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-cli-'));
    env = cliTestEnv(home, EXAMPLES_DIR);
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    gitlabUser = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    gitlab.addProject({ path: 'platform/backend/api', members: [{ userId: gitlabUser, accessLevel: 30 }] });
    gitlab.addProject({ path: 'platform/web', members: [{ userId: gitlabUser, accessLevel: 40 }] });

    const added = ok(await cli(['admin', 'user', 'add', 'alice', '--json'], { process: true }));
    apiKey = JSON.parse(added.stdout).apiKey;
    assert.match(apiKey, /^flk_/);
    server = await startServerProcess(env);
  });

  after(async () => {
    await server?.stop();
    await gitlab?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('first start generates the master key with mode 0600 and says so', async () => {
    const info = await stat(join(home, 'data', 'master.key'));
    assert.equal(info.mode & 0o777, 0o600);
    assert.match(server.output(), /Generated a new master key/);
  });

  test('--help works for every level', async () => {
    assert.match(ok(await cli(['--help'], { process: true })).stdout, /connect/);
    assert.match(ok(await cli(['connect', 'gitlab', '--help'])).stdout, /--ca-file/);
  });

  test('without login, commands say how to get an API key', async () => {
    failsWithOneLine(await cli(['connections', 'list', '--server', server.url]), /forgelink login/);
  });

  test('login with a wrong key fails; with the right key it is stored mode 0600', async () => {
    failsWithOneLine(await cli(['login', '--server', server.url], { stdin: 'flk_wrong\n', process: true }), /API key is not valid/);
    const result = ok(await cli(['login', '--server', server.url], { stdin: `${apiKey}\n`, process: true }));
    assert.match(result.stdout, /Logged in .* as alice/);
    const info = await stat(join(home, 'config', 'forgelink', 'login.json'));
    assert.equal(info.mode & 0o777, 0o600);
  });

  let connectionId: string;

  test('connect gitlab with --token-stdin and --ca-file prints the connection', async () => {
    const token = newToken(['read_repository', 'write_repository', 'read_user']);
    const result = ok(
      await cli(['connect', 'gitlab', '--url', `${gitlab.baseUrl}/`, '--token-stdin', '--ca-file', gitlab.caFile as string, '--label', 'ci bot', '--json'], {
        stdin: `${token}\n`,
        process: true,
      }),
    );
    const connection = JSON.parse(result.stdout);
    connectionId = connection.id;
    assert.equal(connection.baseUrl, gitlab.baseUrl);
    assert.equal(connection.account.username, 'agent-bot');
    assert.equal(connection.capabilities.push, true);
    assert.equal(connection.label, 'ci bot');
  });

  test('connect gitlab reads GITLAB_TOKEN and GITLAB_OAUTH_BASE_URL, and shows warnings', async () => {
    const token = newToken(['api'], null);
    const result = ok(
      await cli(['connect', 'gitlab', '--ca-file', gitlab.caFile as string], {
        env: { GITLAB_TOKEN: token, GITLAB_OAUTH_BASE_URL: gitlab.baseUrl },
      }),
    );
    assert.match(result.stdout, /Connected\./);
    assert.match(result.stdout, /@agent-bot/);
    assert.match(result.stdout, /no_expiry/);
    assert.match(result.stdout, /broad_scope/);
  });

  test('connections list, show, check and projects', async () => {
    const list = ok(await cli(['connections', 'list']));
    assert.equal(list.stdout.trim().split('\n').length, 2);
    assert.match(list.stdout, new RegExp(connectionId));

    const shown = ok(await cli(['connections', 'show', connectionId]));
    assert.match(shown.stdout, /Scopes: +read_repository, write_repository, read_user/);
    assert.match(shown.stdout, /Expires: +2027-03-01/);
    assert.match(shown.stdout, /Agent can: +clone, push, open merge requests \(push options\), read its account/);

    const checked = JSON.parse(ok(await cli(['connections', 'check', connectionId, '--json'])).stdout);
    assert.equal(checked.status, 'active');

    const apiToken = newToken(['read_api', 'read_repository']);
    const withApi = JSON.parse(
      ok(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string, '--token-stdin', '--json'], { stdin: apiToken })).stdout,
    );
    const projects = JSON.parse(ok(await cli(['projects', withApi.id, '--json'])).stdout).projects;
    assert.deepEqual(projects.map((p: { pathWithNamespace: string }) => p.pathWithNamespace).sort(), ['platform/backend/api', 'platform/web']);
    const searched = ok(await cli(['projects', withApi.id, '--search', 'api']));
    assert.match(searched.stdout, /^platform\/backend\/api  main  https:\/\//);
  });

  test('bad input exits non-zero with one line and no stdout', async () => {
    failsWithOneLine(await cli(['connect', 'gitlab', '--url', 'ftp://gitlab.example.com', '--token-stdin'], { stdin: 'glpat-xxxxxxxxxxxxxxxxxxxx' }), /https/);
    failsWithOneLine(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--token-stdin'], { stdin: newToken(['api']) }), /--ca-file/);
    failsWithOneLine(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', '/nonexistent.pem', '--token-stdin'], { stdin: 'x' }), /--ca-file/);
    failsWithOneLine(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string, '--token-stdin'], { stdin: '\n' }), /token/);
    failsWithOneLine(await cli(['connections', 'show', 'con_nope']), /No connection con_nope/);
    failsWithOneLine(await cli(['connections', 'list'], { env: { FORGELINK_API_KEY: 'flk_wrong' } }), /not valid/);
    failsWithOneLine(
      await cli(['connections', 'list', '--server', 'http://127.0.0.1:1'], { env: { FORGELINK_API_KEY: apiKey } }),
      /cannot reach the forgelink server/,
    );
    const usage = await cli(['connections', 'show']);
    assert.notEqual(usage.code, 0);
    assert.match(usage.stderr, /missing required argument/);
  });

  test('run streams the log, waits, and prints the outputs; runs list/show/logs', async () => {
    const token = newToken(['api', 'read_user']);
    const connection = JSON.parse(
      ok(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string, '--token-stdin', '--json'], { stdin: token })).stdout,
    );
    const result = ok(
      await cli(['run', '--connection', connection.id, '--project', 'platform/web', '--json', '--', 'python3', join(EXAMPLES_DIR, 'scripted-agent.py')], { process: true }),
    );
    assert.match(result.stderr, /forgelink: Cloning platform\/web \(main\)/);
    assert.match(result.stderr, /Opened merge request !\d+/);
    const run = JSON.parse(result.stdout);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.outputs.mergeRequests.length, 1);
    assert.equal(run.outputs.issues.length, 1);
    assert.match(ok(await cli(['runs', 'list'])).stdout, new RegExp(`${run.id}  succeeded`));
    assert.match(ok(await cli(['runs', 'show', run.id])).stdout, /merge request !\d+ Agent notes/);
    assert.match(ok(await cli(['runs', 'logs', run.id])).stdout, /Filed issue #\d+/);

    const failed = await cli(['run', '--connection', connection.id, '--project', 'platform/web', '--', 'sh', '-c', 'exit 4'], { process: true });
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /failed — The agent exited with code 4/);
    failsWithOneLine(await cli(['run', '--connection', 'con_nope', '--project', 'platform/web', '--', 'true']), /No connection con_nope/);
  });

  test('rotate-key re-seals every token and the server keeps using them', async () => {
    const rotated = JSON.parse(ok(await cli(['admin', 'rotate-key', '--json'], { process: true })).stdout);
    assert.equal(rotated.keyId, 'k2');
    assert.ok(rotated.resealed >= 3, JSON.stringify(rotated));
    assert.deepEqual(rotated.failed, []);
    const keyring = JSON.parse(await readFile(join(home, 'data', 'master.key'), 'utf8'));
    assert.deepEqual(keyring.versions.map((v: { id: string }) => v.id), ['k1', 'k2']);
    const checked = JSON.parse(ok(await cli(['connections', 'check', connectionId, '--json'])).stdout);
    assert.equal(checked.status, 'active');
  });

  test('disconnect deletes the connection', async () => {
    ok(await cli(['disconnect', connectionId]));
    failsWithOneLine(await cli(['connections', 'show', connectionId]), /No connection/);
  });

  test('no token appears in the database files, the server log, any CLI output or the server argv', async () => {
    const dataDir = join(home, 'data');
    const haystacks: [string, string][] = [];
    for (const entry of await readdir(dataDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const file = join(entry.parentPath, entry.name);
      haystacks.push([file.slice(dataDir.length + 1), (await readFile(file)).toString('latin1')]);
    }
    haystacks.push(['server log', server.output()]);
    for (const [index, result] of outputs.entries()) haystacks.push([`cli #${index}`, result.stdout + result.stderr]);
    haystacks.push(['server argv', await readFile(`/proc/${server.child.pid}/cmdline`, 'latin1')]);
    assert.ok(tokens.length >= 4);
    for (const token of tokens) {
      for (const [where, text] of haystacks) assert.ok(!text.includes(token), `token found in ${where}`);
    }
    assert.ok(haystacks.some(([name]) => name.startsWith('forgelink.db')));
  });
});
