import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { ok } from '../support/cli-checks.ts';
import { EXAMPLES_DIR } from '../support/forgelink.ts';
import { cliTestEnv, forgelinkCli, startServerProcess, type RunningServer } from '../support/processes.ts';
import { forgelinkInTerminal } from '../support/terminal.ts';

/**
 * The questions `connect` and `disconnect` ask a person at a terminal (README, "Using the CLI"), answered both
 * ways on a real pseudo-terminal; without a terminal they never ask (test/cli/cli-everyday.test.ts).
 */
describe('connect and disconnect ask on a terminal, and do what the answer says', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let gitlab: FakeGitLab;
  let server: RunningServer;
  let bot: number;

  const connectArgs = () => ['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string];
  const newToken = () => gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-03-01' });
  const ids = async (): Promise<string[]> =>
    JSON.parse(ok(await forgelinkCli(['connections', 'list', '--json'], { env })).stdout).connections.map((c: { id: string }) => c.id).sort();
  /** A connection made without a terminal, replacing any other of the account: the test starts from it alone. */
  const connectAlone = async (): Promise<string> =>
    JSON.parse(ok(await forgelinkCli([...connectArgs(), '--token-stdin', '--replace', '--json'], { env, stdin: newToken() })).stdout).id as string;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-cli-terminal-'));
    env = cliTestEnv(home, EXAMPLES_DIR);
    gitlab = await startFakeGitLab({ tls: true });
    bot = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    const apiKey = JSON.parse(ok(await forgelinkCli(['admin', 'user', 'add', 'alice', '--json'], { env })).stdout).apiKey as string;
    server = await startServerProcess(env);
    env.FORGELINK_SERVER = server.url;
    env.FORGELINK_API_KEY = apiKey;
  });

  after(async () => {
    await server?.stop();
    await gitlab?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('connect: the same account again offers to replace the old connection; "n" keeps both with a warning', async () => {
    const old = await connectAlone();
    const result = await forgelinkInTerminal(connectArgs(), {
      env: { ...env, GITLAB_TOKEN: newToken() },
      answers: [{ after: new RegExp(`is also connected as ${old} .*Disconnect ${old}\\? \\[y/N\\] $`), answer: 'n' }],
    });
    assert.equal(result.code, 0, result.transcript);
    assert.equal(result.asked, 1, result.transcript);
    const added = /^Connected\.\n(con_\S+)/m.exec(result.transcript)?.[1] as string;
    assert.ok(added, result.transcript);
    assert.match(result.transcript, new RegExp(`forgelink: warning: @agent-bot on ${gitlab.baseUrl} is also connected as ${old} .*"forgelink disconnect ${old}"`));
    assert.deepEqual(await ids(), [old, added].sort());
  });

  test('connect: answering "y" disconnects the old connection, and the new one stays', async () => {
    const old = await connectAlone();
    const result = await forgelinkInTerminal(connectArgs(), {
      env: { ...env, GITLAB_TOKEN: newToken() },
      answers: [{ after: new RegExp(`Disconnect ${old}\\? \\[y/N\\] $`), answer: 'y' }],
    });
    assert.equal(result.code, 0, result.transcript);
    assert.equal(result.asked, 1, result.transcript);
    const added = /^Connected\.\n(con_\S+)/m.exec(result.transcript)?.[1] as string;
    assert.match(result.transcript, new RegExp(`forgelink: disconnected ${old}, replaced by ${added}`));
    assert.doesNotMatch(result.transcript, /warning:/);
    assert.deepEqual(await ids(), [added]);
  });

  test('disconnect asks first: "n" (or just Enter) disconnects nothing and fails; "y" disconnects', async () => {
    const id = await connectAlone();
    const question = new RegExp(`Disconnect ${id} \\(@agent-bot on [^,]+, "[^"]*"\\)\\? \\[y/N\\] $`);
    for (const answer of ['n', '']) {
      const refused = await forgelinkInTerminal(['disconnect', id], { env, answers: [{ after: question, answer }] });
      assert.equal(refused.asked, 1, refused.transcript);
      assert.equal(refused.code, 1, refused.transcript);
      assert.match(refused.transcript, /^forgelink: nothing was disconnected$/m);
      assert.deepEqual(await ids(), [id]);
    }
    const done = await forgelinkInTerminal(['disconnect', id], { env, answers: [{ after: question, answer: 'y' }] });
    assert.equal(done.code, 0, done.transcript);
    assert.equal(done.asked, 1, done.transcript);
    assert.match(done.transcript, new RegExp(`Disconnected ${id} \\(@agent-bot on `));
    assert.match(done.transcript, /stays valid at GitLab until you revoke it there/);
    assert.deepEqual(await ids(), []);
  });

  test('disconnect --yes on a terminal does not ask', async () => {
    const id = await connectAlone();
    const result = await forgelinkInTerminal(['disconnect', id, '--yes'], { env });
    assert.equal(result.code, 0, result.transcript);
    assert.doesNotMatch(result.transcript, /\[y\/N\]/);
    assert.match(result.transcript, new RegExp(`Disconnected ${id}`));
    assert.deepEqual(await ids(), []);
  });
});
