import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { argvHolding, failsWithOneLine, ok } from '../support/cli-checks.ts';
import { forgelinkInProcess } from '../support/cli-in-process.ts';
import { forgelinkCli, startServerProcess, type Result, type RunningServer } from '../support/processes.ts';

/** The agent shows the secret every way a careless agent might: plain, base64, URL-encoded, and its hash. */
const SHOW_SECRET = [
  'sh',
  '-c',
  'echo "key=$ANTHROPIC_API_KEY"; printf %s "$ANTHROPIC_API_KEY" | base64; echo "$ANTHROPIC_API_KEY" >&2; printf "sha256=%s\\n" "$(printf %s "$ANTHROPIC_API_KEY" | sha256sum | cut -d" " -f1)"',
];

describe('secrets through the CLI against a started server, with a real sandboxed run', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let gitlab: FakeGitLab;
  let server: RunningServer;
  let connectionId: string;
  // Characters that need care in a URL, a shell and JSON, so every form the scrubber covers is exercised.
  const value = `sk-ant-${randomBytes(18).toString('base64url')}+/=&"x`;
  const sha = createHash('sha256').update(value).digest('hex');
  const outputs: Result[] = [];

  /** `forgelink <args>` in this process; with `process`, as a real process (where the process boundary is the point). */
  async function cli(args: string[], options: { stdin?: string; process?: true } = {}): Promise<Result> {
    const run = options.process ? forgelinkCli : forgelinkInProcess;
    const result = await run(args, { env, ...(options.stdin === undefined ? {} : { stdin: options.stdin }) });
    outputs.push(result);
    return result;
  }

  /** Runs `forgelink run … --secret ANTHROPIC_API_KEY` while watching every process's argv for the value. */
  /** A run printing the secret's hash; `direct` by default, the mode in which the sandbox holds the value itself. */
  async function runShowingSecret(credentials: 'direct' | 'brokered' = 'direct'): Promise<{ result: Result; leaks: string[] }> {
    const { value: result, leaks } = await argvHolding(value, () =>
      cli(['run', '--connection', connectionId, '--project', 'platform/web', '--secret', 'ANTHROPIC_API_KEY', '--credentials', credentials, '--json', '--', ...SHOW_SECRET], { process: true }),
    );
    return { result, leaks };
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-secrets-cli-'));
    env = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      FORGELINK_DATA_DIR: join(home, 'data'),
      FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
    };
    gitlab = await startFakeGitLab({ tls: true });
    const bot = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    gitlab.addProject({ path: 'platform/web', members: [{ userId: bot, accessLevel: 30 }] });
    const apiKey = JSON.parse(ok(await cli(['admin', 'user', 'add', 'alice', '--json'])).stdout).apiKey;
    server = await startServerProcess(env);
    ok(await cli(['login', '--server', server.url], { stdin: `${apiKey}\n` }));
    const token = gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-03-01' });
    connectionId = JSON.parse(
      ok(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string, '--token-stdin', '--json'], { stdin: token })).stdout,
    ).id;
  });

  after(async () => {
    await server?.stop();
    await gitlab?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('secrets set reads the value from stdin; list shows name, hosts and times, never the value', async () => {
    const set = ok(await cli(['secrets', 'set', 'ANTHROPIC_API_KEY', '--host', 'api.anthropic.com', '--json'], { stdin: `${value}\n`, process: true }));
    const secret = JSON.parse(set.stdout);
    assert.equal(secret.name, 'ANTHROPIC_API_KEY');
    assert.deepEqual(secret.hosts, ['api.anthropic.com:443']);
    const listed = JSON.parse(ok(await cli(['secrets', 'list', '--json'])).stdout);
    assert.deepEqual(listed.secrets.map((s: { name: string; lastUsedAt: string | null }) => [s.name, s.lastUsedAt]), [['ANTHROPIC_API_KEY', null]]);
    assert.match(ok(await cli(['secrets', 'list'])).stdout, /^ANTHROPIC_API_KEY +api\.anthropic\.com:443 +created .+ last used never$/m);
  });

  test('bad names and values fail with one line naming the field', async () => {
    failsWithOneLine(await cli(['secrets', 'set', 'PATH'], { stdin: value }), /The secret name "PATH" is reserved.*\(name\)/);
    failsWithOneLine(await cli(['secrets', 'set', 'GITLAB_TOKEN'], { stdin: value }), /GITLAB_\*.*\(name\)/);
    failsWithOneLine(await cli(['secrets', 'set', 'anthropic_api_key'], { stdin: value }), /upper-case \(ANTHROPIC_API_KEY\)/);
    failsWithOneLine(await cli(['secrets', 'set', 'OPENAI_API_KEY'], { stdin: '' }), /value is empty.*\(value\)/);
    failsWithOneLine(await cli(['secrets', 'set', 'OPENAI_API_KEY', '--host', 'no such host'], { stdin: value }), /not a host.*\(--host\)/);
    failsWithOneLine(await cli(['secrets', 'delete', 'NEVER_SET']), /no secret named NEVER_SET/);
  });

  test('a run with --secret gets the value as an environment variable; its log shows it only redacted; argv never holds it', async () => {
    const { result, leaks } = await runShowingSecret();
    assert.deepEqual(leaks, [], 'the value appeared in a process argument list');
    const run = JSON.parse(ok(result).stdout);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(run.secrets, ['ANTHROPIC_API_KEY']);
    // The sandbox received exactly the value (its hash proves it without printing it).
    assert.match(result.stderr, new RegExp(`sha256=${sha}`));
    assert.match(result.stderr, /key=\[REDACTED\]/);
    assert.match(result.stderr, /Secrets given as environment variables: ANTHROPIC_API_KEY/);
    const logs = ok(await cli(['runs', 'logs', run.id])).stdout;
    assert.match(logs, /key=\[REDACTED\]/);
    for (const form of [value, Buffer.from(value).toString('base64'), encodeURIComponent(value)]) {
      assert.ok(!logs.includes(form) && !result.stderr.includes(form), `the log shows the value as ${form}`);
    }

    const audit = JSON.parse(ok(await cli(['audit', '--json'])).stdout).entries;
    const decrypted = audit.filter((entry: { action: string }) => entry.action === 'secret.decrypted');
    assert.equal(decrypted.length, 1);
    assert.equal(decrypted[0].runId, run.id);
    assert.equal(decrypted[0].details.name, 'ANTHROPIC_API_KEY');
    assert.notEqual(JSON.parse(ok(await cli(['secrets', 'list', '--json'])).stdout).secrets[0].lastUsedAt, null);

    // Brokered (the server's default), the secret bound to api.anthropic.com reaches the sandbox as a surrogate only.
    const brokered = await runShowingSecret('brokered');
    assert.deepEqual(brokered.leaks, []);
    const brokeredRun = JSON.parse(ok(brokered.result).stdout);
    assert.equal(brokeredRun.status, 'succeeded', JSON.stringify(brokeredRun.error));
    assert.equal(brokeredRun.credentials, 'brokered');
    assert.match(brokered.result.stderr, /Credentials brokered: the sandbox holds surrogates for GITLAB_TOKEN, ANTHROPIC_API_KEY;/);
    assert.match(brokered.result.stderr, /sha256=[0-9a-f]{64}/);
    assert.doesNotMatch(brokered.result.stderr, new RegExp(`sha256=${sha}`), 'the sandbox held the real value');
    failsWithOneLine(
      await cli(['run', '--connection', connectionId, '--project', 'platform/web', '--credentials', 'proxied', '--', 'true']),
      /^forgelink: --credentials: expected brokered or direct, not "proxied"$/m,
    );
  });

  test('a run naming a missing secret is refused before it is queued, with the command that sets it', async () => {
    const before = JSON.parse(ok(await cli(['runs', 'list', '--json'])).stdout).runs.length;
    failsWithOneLine(
      await cli(['run', '--connection', connectionId, '--project', 'platform/web', '--secret', 'OPENAI_API_KEY', '--', 'true']),
      /no secret named OPENAI_API_KEY: set it with `forgelink secrets set OPENAI_API_KEY`.*\(--secret\)/,
    );
    assert.equal(JSON.parse(ok(await cli(['runs', 'list', '--json'])).stdout).runs.length, before);
  });

  test('rotate-key re-seals the secret and runs still receive it', async () => {
    const rotated = JSON.parse(ok(await cli(['admin', 'rotate-key', '--json'])).stdout);
    assert.equal(rotated.keyId, 'k2');
    assert.deepEqual(rotated.failed, []);
    assert.equal(rotated.total, 2, 'the connection token and the user secret');
    assert.equal(rotated.resealed, 2);
    const { result, leaks } = await runShowingSecret();
    assert.deepEqual(leaks, []);
    assert.equal(JSON.parse(ok(result).stdout).status, 'succeeded');
    assert.match(result.stderr, new RegExp(`sha256=${sha}`));
  });

  test('secrets delete removes it; a run asking for it is then refused', async () => {
    ok(await cli(['secrets', 'delete', 'ANTHROPIC_API_KEY']));
    assert.deepEqual(JSON.parse(ok(await cli(['secrets', 'list', '--json'])).stdout).secrets, []);
    failsWithOneLine(
      await cli(['run', '--connection', connectionId, '--project', 'platform/web', '--secret', 'ANTHROPIC_API_KEY', '--', 'true']),
      /forgelink secrets set ANTHROPIC_API_KEY/,
    );
  });

  test('the value is in no database file, the server log, any CLI output or the server argv', async () => {
    const dataDir = join(home, 'data');
    const haystacks: [string, string][] = [];
    for (const entry of await readdir(dataDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const file = join(entry.parentPath, entry.name);
      haystacks.push([file.slice(dataDir.length + 1), (await readFile(file)).toString('latin1')]);
    }
    assert.ok(haystacks.some(([name]) => name.startsWith('forgelink.db')));
    haystacks.push(['server log', server.output()]);
    for (const [index, result] of outputs.entries()) haystacks.push([`cli #${index}`, result.stdout + result.stderr]);
    haystacks.push(['server argv', await readFile(`/proc/${server.child.pid}/cmdline`, 'latin1')]);
    for (const form of [value, Buffer.from(value).toString('base64'), Buffer.from(value, 'utf8').toString('hex')]) {
      for (const [where, text] of haystacks) assert.ok(!text.includes(form), `the value found in ${where}`);
    }
  });
});
