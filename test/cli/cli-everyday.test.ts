import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { EXAMPLES_DIR } from '../support/forgelink.ts';
import { forgelinkInProcess } from '../support/cli-in-process.ts';
import { cliTestEnv, forgelinkCli, startServerProcess, type Result, type RunningServer } from '../support/processes.ts';

/** One line on stderr starting with `forgelink:`, exit non-zero; with `json`, the error document on stdout. */
function failsWithOneLine(result: Result, pattern: RegExp, json?: { code?: string; field?: string }): void {
  assert.notEqual(result.code, 0, result.stdout);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0] as string, /^forgelink: /);
  assert.match(lines[0] as string, pattern);
  if (json === undefined) {
    assert.equal(result.stdout, '');
    return;
  }
  const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; field?: string } };
  assert.equal(`forgelink: ${error.message}`, lines[0]);
  if (json.code !== undefined) assert.equal(error.code, json.code);
  if (json.field !== undefined) assert.equal(error.field, json.field);
}

describe('the CLI in everyday use: usage, help, connect/disconnect, runs (started server, fake GitLab)', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let gitlab: FakeGitLab;
  let server: RunningServer;
  let bot: number;

  /** `forgelink <args>` in this process; with `process`, as a real process (exit codes, stdout and stderr apart). */
  const cli = (args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv; process?: true } = {}) =>
    (options.process ? forgelinkCli : forgelinkInProcess)(args, { env: { ...env, ...options.env }, ...(options.stdin === undefined ? {} : { stdin: options.stdin }) });

  async function ok(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv; process?: true } = {}): Promise<Result> {
    const result = await cli(args, options);
    assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
    return result;
  }

  const connectArgs = () => ['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string, '--token-stdin'];
  const token = (scopes: string[]) => gitlab.addToken(bot, { scopes, expiresAt: '2027-03-01' });

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-cli-everyday-'));
    env = cliTestEnv(home, EXAMPLES_DIR);
    gitlab = await startFakeGitLab({ tls: true });
    bot = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    gitlab.addProject({ path: 'acme/web', members: [{ userId: bot, accessLevel: 40 }] });
    const apiKey = JSON.parse((await ok(['admin', 'user', 'add', 'alice', '--json'])).stdout).apiKey as string;
    server = await startServerProcess(env);
    env.FORGELINK_SERVER = server.url;
    env.FORGELINK_API_KEY = apiKey;
  });

  after(async () => {
    await server?.stop();
    await gitlab?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('--version prints the package version', async () => {
    const manifest = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    assert.equal((await ok(['--version'], { process: true })).stdout.trim(), manifest.version);
  });

  test('a command that lives under a group is suggested by its full name', async () => {
    failsWithOneLine(await cli(['doctor']), /unknown command 'doctor' — did you mean 'connections doctor'\?/);
    failsWithOneLine(await cli(['connections', 'lst']), /did you mean 'connections list'\?/);
    failsWithOneLine(await cli(['connections', 'list', '--jsn']), /unknown option '--jsn' — did you mean --json\?/);
    // Two letters swapped are one typo, in a group as at the top level.
    failsWithOneLine(await cli(['runs', 'shwo', 'x']), /^forgelink: unknown command 'shwo' — did you mean 'runs show'\?$/);
    failsWithOneLine(await cli(['conenctions', 'list']), /^forgelink: unknown command 'conenctions' — did you mean 'connections'\?$/);
    // Nothing close: the help to read is the group's.
    failsWithOneLine(await cli(['runs', 'zzz']), /^forgelink: unknown command 'zzz' \(run "forgelink runs --help" for its commands\)$/);
    failsWithOneLine(await cli(['admin', 'user', 'zzz']), /^forgelink: unknown command 'zzz' \(run "forgelink admin user --help" for its commands\)$/);
    failsWithOneLine(await cli(['zzz']), /^forgelink: unknown command 'zzz' \(run "forgelink --help" for the commands\)$/);
  });

  test('usage errors are one line; with --json the error document is on stdout too (commander\'s own errors as well)', async () => {
    failsWithOneLine(await cli(['connections', 'show']), /missing required argument 'id'/);
    failsWithOneLine(await cli(['--json', 'connections', 'show'], { process: true }), /missing required argument 'id'/, { code: 'missing_argument', field: 'id' });
    failsWithOneLine(await cli(['run', '--json', '--project', 'acme/web', '--', 'true']), /--connection/, { field: '--connection' });
    failsWithOneLine(await cli(['--json', 'nope']), /unknown command 'nope'/, { code: 'unknown_command' });
  });

  test('a --ca-file that cannot be read is an input error naming --ca-file, in words', async () => {
    const missing = join(home, 'missing.pem');
    failsWithOneLine(await cli([...connectArgs().map((arg) => (arg === gitlab.caFile ? missing : arg)), '--json'], { stdin: token(['api']) }), new RegExp(`^forgelink: --ca-file: cannot read ${missing}: no such file$`), {
      code: 'invalid_ca_file',
      field: '--ca-file',
    });
    failsWithOneLine(await cli([...connectArgs().map((arg) => (arg === gitlab.caFile ? home : arg)), '--json'], { stdin: token(['api']) }), new RegExp(`^forgelink: --ca-file: cannot read ${home}: it is a directory$`), {
      code: 'invalid_ca_file',
      field: '--ca-file',
    });
  });

  test('server errors name the CLI flag in the CLI and the field in the API', async () => {
    const bad = await cli([...connectArgs().map((arg) => (arg === gitlab.baseUrl ? 'ftp://gitlab.example.com' : arg)), '--json'], { stdin: 'glpat-xxxxxxxxxxxxxxxxxxxx' });
    failsWithOneLine(bad, /\(--url\)$/, { field: '--url' });
    const response = await fetch(`${server.url}/api/v1/connections`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.FORGELINK_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ baseUrl: 'ftp://gitlab.example.com', token: 'glpat-xxxxxxxxxxxxxxxxxxxx' }),
    });
    assert.equal(((await response.json()) as { error: { field: string } }).error.field, 'baseUrl');
  });

  test('login --server without a scheme says the scheme is missing', async () => {
    failsWithOneLine(await cli(['login', '--server', '127.0.0.1:8080'], { stdin: 'flk_x\n' }), /--server must start with http:\/\/ or https:\/\//);
  });

  test('help says what commands do: serve serves the dashboard, connections lists all its subcommands, login shows --server', async () => {
    const help = (await ok(['--help'])).stdout.replace(/\s+/g, ' ');
    assert.match(help, /serve \[options\] run the server: the HTTP API, the web dashboard/);
    // The summary line names every connections subcommand its own help lists.
    const summary = /connections your GitLab connections: ([^.]*?) disconnect /.exec(help)?.[1] ?? '';
    const listed = [...(await ok(['connections', '--help'])).stdout.split('Commands:')[1]!.matchAll(/^ {2}([a-z-]+)/gm)]
      .map((match) => match[1] as string)
      .filter((name) => name !== 'help');
    assert.ok(listed.length >= 7, listed.join(' '));
    for (const name of listed) assert.ok(summary.split(', ').includes(name), `the connections summary "${summary}" omits ${name}`);
    // --json and --server are global: a subcommand's help shows them too.
    for (const args of [['runs', 'show', '--help'], ['connections', 'set', '--help'], ['admin', 'user', 'add', '--help']]) {
      const sub = (await ok(args)).stdout;
      assert.match(sub, /Global Options:[\s\S]*--json +print one JSON document/, args.join(' '));
      assert.match(sub, /Global Options:[\s\S]*--server <url>/, args.join(' '));
    }
    const login = (await ok(['login', '--help'])).stdout;
    assert.match(login, /--server <url> +the forgelink server/);
    assert.equal(login.match(/--server/g)?.length, 1, 'login has its own --server; the global one is not listed beside it');
    assert.match(login, /Global Options:[\s\S]*--json/);
    assert.match((await ok(['disconnect', '--help'])).stdout, /--yes/);
  });

  test('connect prints the next command with the real id; the same account again warns with the old id; --replace replaces it', async () => {
    const first = await ok(connectArgs(), { stdin: token(['api']) });
    const firstId = /^(con_\S+)/m.exec(first.stdout)?.[1] as string;
    assert.ok(firstId, first.stdout);
    assert.match(first.stdout, new RegExp(`Next: forgelink projects ${firstId}`));
    assert.doesNotMatch(first.stdout, /<id>/);
    assert.equal(first.stderr, '');

    const second = await ok([...connectArgs(), '--json'], { stdin: token(['api']) });
    const secondId = JSON.parse(second.stdout).id as string;
    assert.match(second.stderr, new RegExp(`^forgelink: warning: @agent-bot on ${gitlab.baseUrl} is also connected as ${firstId} .*forgelink disconnect ${firstId}`));
    assert.equal(second.stderr.trimEnd().split('\n').length, 1);

    const third = await ok([...connectArgs(), '--replace', '--json'], { stdin: token(['api']) });
    const replaced = JSON.parse(third.stdout) as { id: string; replaced: string[] };
    assert.deepEqual(replaced.replaced.sort(), [firstId, secondId].sort());
    const left = JSON.parse((await ok(['connections', 'list', '--json'])).stdout).connections.map((c: { id: string }) => c.id);
    assert.deepEqual(left, [replaced.id]);
  });

  test('disconnect without a terminal does not ask, and says the token stays valid at GitLab', async () => {
    const id = JSON.parse((await ok([...connectArgs(), '--replace', '--json'], { stdin: token(['read_repository']) })).stdout).id as string;
    const result = await ok(['disconnect', id]);
    assert.match(result.stdout, new RegExp(`Disconnected ${id}`));
    assert.match(result.stdout, /stays valid at GitLab until you revoke it there: https:\/\/.*\/-\/user_settings\/personal_access_tokens/);
  });

  test('connections show --json includes the status history the text shows', async () => {
    const id = JSON.parse((await ok([...connectArgs(), '--replace', '--json'], { stdin: token(['api']) })).stdout).id as string;
    const shown = JSON.parse((await ok(['connections', 'show', id, '--json'])).stdout);
    assert.equal(shown.id, id);
    assert.ok(Array.isArray(shown.statusHistory), JSON.stringify(shown));
    assert.match((await ok(['connections', 'show', id])).stdout, /Status history/);
  });

  test('runs: the log and the CLI show the quoted command; runs list has outputs and a short command', async () => {
    const id = JSON.parse((await ok([...connectArgs(), '--replace', '--json'], { stdin: token(['api', 'read_user']) })).stdout).id as string;
    const quoted = await ok(['run', '--connection', id, '--project', 'acme/web', '--', 'sh', '-c', 'env | sort']);
    assert.match(quoted.stderr, /^forgelink: Running: sh -c 'env \| sort'$/m);
    assert.match(quoted.stdout, /Command: +sh -c 'env \| sort'/);

    const agent = await ok(['run', '--json', '--connection', id, '--project', 'acme/web', '--', 'python3', join(EXAMPLES_DIR, 'scripted-agent.py')]);
    const run = JSON.parse(agent.stdout) as { id: string };
    const list = (await ok(['runs', 'list'])).stdout.split('\n');
    assert.match(list[0] as string, /^ID +STATUS +PROJECT +OUTPUTS +CREATED +COMMAND$/);
    const row = list.find((line) => line.startsWith(run.id)) as string;
    assert.match(row, /1 MR, 1 branch, 1 issue/);
    assert.match(row, /python3 \/.{20,}…$/);
    assert.ok(row.length < 200, row);
  });

  test('a run that fails before starting says so once; a missing command says how to make it available', async () => {
    const id = JSON.parse((await ok(['connections', 'list', '--json'])).stdout).connections[0].id as string;
    const early = await cli(['run', '--connection', id, '--project', 'acme/missing', '--', 'true']);
    assert.equal(early.code, 1);
    assert.equal(early.stderr.match(/failed/g)?.length, 1, early.stderr);
    assert.match(early.stderr, /^forgelink: Run failed before the agent started: /m);

    const missing = await cli(['run', '--connection', id, '--project', 'acme/web', '--', 'no-such-agent']);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /"no-such-agent" was not found in the sandbox.*install it on the host under \/usr, or mount .* FORGELINK_SANDBOX_MOUNTS/);
  });
});
