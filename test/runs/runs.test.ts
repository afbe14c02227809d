import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { EXAMPLES_DIR, startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { waitFor } from '../support/wait.ts';
import { argvHolding } from '../support/cli-checks.ts';

/** How long the hanging agents sleep, in seconds: unique, so the search for survivors finds only this file's processes. */
const HANG = `1000.${randomInt(1, 1_000_000)}`;
const AGENT = ['python3', path.join(EXAMPLES_DIR, 'scripted-agent.py')];

describe('runs: an agent works on a GitLab project in a sandbox (real bubblewrap, fake GitLab over HTTPS)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let botId: number;
  let projectId: number;
  const tokens: string[] = [];

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    projectId = gitlab.addProject({
      path: 'acme/platform/api',
      branches: ['release-1'],
      members: [{ userId: botId, accessLevel: 30 }],
    }).id;
    gitlab.addProject({ path: 'acme/open', protectDefaultBranch: false, members: [{ userId: botId, accessLevel: 30 }] });
    gitlab.addProject({ path: 'acme/readonly', members: [{ userId: botId, accessLevel: 20 }] });
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  async function connect(scopes: string[]): Promise<{ id: string; token: string }> {
    const token = gitlab.addToken(botId, { scopes, expiresAt: '2027-06-30' });
    tokens.push(token);
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(response.status, 201, response.text);
    return { id: response.json.id, token };
  }

  async function runToEnd(user: TestUser, body: Record<string, unknown>): Promise<any> {
    const started = await forgelink.call(user, 'POST', '/api/v1/runs', body);
    assert.equal(started.status, 201, started.text);
    assert.equal(started.json.status, 'queued');
    for (;;) {
      const current = await forgelink.call(user, 'GET', `/api/v1/runs/${started.json.id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function logText(runId: string): Promise<string> {
    const response = await forgelink.call(alice, 'GET', `/api/v1/runs/${runId}/log`);
    return response.json.entries.map((entry: { text: string }) => entry.text).join('');
  }

  async function assertNothingLeftBehind(): Promise<void> {
    const runsDir = path.join(forgelink.workDir, 'runs');
    const sandboxes = path.join(forgelink.workDir, 'sandboxes');
    assert.deepEqual(await readdir(runsDir).catch(() => []), []);
    assert.deepEqual(await readdir(sandboxes).catch(() => []), []);
  }

  test('an api token: the agent pushes a branch, opens a merge request and files an issue', async () => {
    const { id, token } = await connect(['api', 'read_user']);
    // Watch every process on the host while the run executes: the token must never be in an argv.
    const { value: run, leaks } = await argvHolding(token, () =>
      runToEnd(alice, { connectionId: id, project: 'acme/platform/api', command: AGENT }),
    );
    assert.deepEqual(leaks, [], 'the token appeared in a process argument list');

    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.exitCode, 0);
    assert.equal(run.projectPath, 'acme/platform/api');
    assert.equal(run.baseBranch, 'main');
    assert.deepEqual(run.warnings, []);
    const branch = `agent/${run.id}`;
    assert.equal(run.outputs.branches.length, 1);
    assert.equal(run.outputs.branches[0].name, branch);
    assert.equal(run.outputs.branches[0].created, true);
    const actual = gitlab.branches(projectId).find((b: { name: string }) => b.name === branch);
    assert.equal(run.outputs.branches[0].sha, actual?.sha);
    assert.equal(run.outputs.branches[0].webUrl, `${gitlab.baseUrl}/acme/platform/api/-/tree/${branch}`);
    assert.equal(run.outputs.mergeRequests.length, 1);
    assert.equal(run.outputs.mergeRequests[0].detectedBy, 'api');
    assert.equal(run.outputs.mergeRequests[0].sourceBranch, branch);
    assert.equal(run.outputs.mergeRequests[0].targetBranch, 'main');
    assert.match(run.outputs.mergeRequests[0].webUrl, /\/acme\/platform\/api\/-\/merge_requests\/\d+$/);
    assert.equal(run.outputs.issues.length, 1);
    assert.match(run.outputs.issues[0].webUrl, /\/acme\/platform\/api\/-\/issues\/\d+$/);
    assert.ok(run.egress.allowed.includes(`127.0.0.1:${new URL(gitlab.baseUrl).port}`), JSON.stringify(run.egress));

    const log = await logText(run.id);
    assert.match(log, /Opened merge request/);
    assert.ok(!log.includes(token));
    await assertNothingLeftBehind();
  });

  test('a write_repository token: the merge request comes from push options and is detected in the push reply', async () => {
    const { id } = await connect(['write_repository']);
    const run = await runToEnd(alice, { connectionId: id, project: 'acme/platform/api', command: AGENT });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.outputs.branches.length, 1);
    assert.equal(run.outputs.mergeRequests.length, 1);
    assert.equal(run.outputs.mergeRequests[0].detectedBy, 'push');
    assert.equal(run.outputs.mergeRequests[0].sourceBranch, `agent/${run.id}`);
    assert.deepEqual(run.outputs.issues, []);
    const mrs = gitlab.mergeRequests(projectId).filter((mr: { sourceBranch?: string; source_branch?: string }) => (mr.sourceBranch ?? mr.source_branch) === `agent/${run.id}`);
    assert.equal(mrs.length, 1);
  });

  test("back-to-back runs of one account: each lists only the merge requests and issues it made, not the previous run's", async () => {
    // As in `npm run demo`: a push-only run opens a merge request; a run of the same account on another connection
    // starts right after it ends (within the 5 s the API lookup reaches back), then a third right after that one.
    const pushOnly = await connect(['write_repository']);
    const api = await connect(['api', 'read_user']);
    const first = await runToEnd(alice, { connectionId: pushOnly.id, project: 'acme/platform/api', command: AGENT });
    assert.equal(first.status, 'succeeded', JSON.stringify(first.error));
    assert.equal(first.outputs.mergeRequests.length, 1);
    const second = await runToEnd(alice, { connectionId: api.id, project: 'acme/platform/api', command: AGENT });
    const third = await runToEnd(alice, { connectionId: api.id, project: 'acme/platform/api', command: AGENT });
    const direct = await runToEnd(alice, { connectionId: api.id, project: 'acme/platform/api', command: AGENT, credentials: 'direct' });
    const everyIssue = gitlab.issues(projectId) as { iid: number; created_at?: string; createdAt?: string }[];
    for (const [previous, run] of [[first, second], [second, third], [third, direct]]) {
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      // The previous run's merge request was made within the lookup window of this one, by the same account.
      assert.ok(Date.parse(run.startedAt) - Date.parse(previous.finishedAt) < 5_000, `${previous.finishedAt} → ${run.startedAt}`);
      assert.deepEqual(
        run.outputs.mergeRequests.map((mr: { sourceBranch: string; detectedBy: string }) => [mr.sourceBranch, mr.detectedBy]),
        [[`agent/${run.id}`, 'api']],
        `${run.id} lists ${JSON.stringify(run.outputs.mergeRequests)}`,
      );
      assert.notEqual(run.outputs.mergeRequests[0].iid, previous.outputs.mergeRequests[0].iid);
    }
    // Brokered, the broker saw which issue each run created: exactly one each, the later one's newer.
    assert.equal(second.outputs.issues.length, 1, JSON.stringify(second.outputs.issues));
    assert.equal(third.outputs.issues.length, 1, JSON.stringify(third.outputs.issues));
    assert.ok(third.outputs.issues[0].iid > second.outputs.issues[0].iid);
    assert.ok(everyIssue.some((issue) => issue.iid === third.outputs.issues[0].iid));
    // A direct run's issues are still those of the time window (docs/architecture.md, "Outputs"): its own is among them.
    assert.ok(direct.outputs.issues.some((issue: { iid: number }) => issue.iid > third.outputs.issues[0].iid), JSON.stringify(direct.outputs.issues));
  });

  test('a named branch is cloned; git credentials live in no file and no URL', async () => {
    const { id } = await connect(['read_repository', 'write_repository', 'read_api']);
    const script = [
      'set -e',
      'test "$(git rev-parse --abbrev-ref HEAD)" = release-1',
      'if grep -rqF "$GITLAB_TOKEN" .git; then echo TOKEN-IN-GIT-DIR; fi',
      'case "$(git remote get-url origin)" in *"$GITLAB_TOKEN"*|*@*) echo TOKEN-IN-URL;; esac',
      'if grep -rqF "$GITLAB_TOKEN" "$HOME" 2>/dev/null; then echo TOKEN-IN-HOME; fi',
      'grep "^Seccomp:" /proc/self/status',
      'git checkout -q -b agent/named',
      'echo hi > named.txt && git add named.txt && git commit -qm named',
      'git push -q origin agent/named',
      'echo CLEAN-AND-PUSHED',
    ].join('\n');
    const run = await runToEnd(alice, { connectionId: id, project: 'acme/platform/api', branch: 'release-1', command: ['sh', '-c', script] });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.baseBranch, 'release-1');
    const log = await logText(run.id);
    assert.match(log, /^CLEAN-AND-PUSHED$/m);
    assert.match(log, /^Seccomp:\t2$/m, 'the agent runs under a seccomp filter');
    assert.doesNotMatch(log, /^TOKEN-IN-/m);
    assert.deepEqual(run.outputs.branches.map((b: { name: string }) => b.name), ['agent/named']);
  });

  test('an unprotected default branch is warned about', async () => {
    const { id } = await connect(['api']);
    const run = await runToEnd(alice, { connectionId: id, project: 'acme/open', command: ['true'] });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(run.warnings.map((w: { code: string }) => w.code), ['default_branch_unprotected']);
  });

  test('bad runs fail at once with a clear reason and leave nothing behind', async () => {
    const { id, token } = await connect(['api']);
    for (const [body, code, message] of [
      [{ project: 'acme/nope', command: ['true'] }, 'project_not_found', /acme\/nope/],
      [{ project: 'acme/platform/api', branch: 'no-such-branch', command: ['true'] }, 'branch_not_found', /no-such-branch/],
      [{ project: 'acme/readonly', command: ['true'] }, 'insufficient_access', /Developer/],
      [{ project: 'acme/platform/api', command: ['no-such-agent', '--go'] }, 'command_not_found', /no-such-agent/],
      [{ project: 'acme/platform/api', command: ['sh', '-c', 'exit 3'] }, 'agent_failed', /code 3/],
    ] as const) {
      const run = await runToEnd(alice, { connectionId: id, ...body });
      assert.equal(run.status, 'failed', JSON.stringify(body));
      assert.equal(run.error.code, code, JSON.stringify(run.error));
      assert.match(run.error.message, message);
      assert.match(await logText(run.id), new RegExp(`Run failed`));
    }
    gitlab.revokeToken(token);
    const revoked = await runToEnd(alice, { connectionId: id, project: 'acme/platform/api', command: ['true'] });
    assert.equal(revoked.status, 'failed');
    assert.equal(revoked.error.code, 'gitlab_token_revoked');
    assert.equal((await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`)).json.status, 'revoked');
    await assertNothingLeftBehind();
  });

  test('GitLab unreachable at start fails the run with that reason', async () => {
    const other = await startFakeGitLab();
    const user = other.addUser({ username: 'u' }).id;
    other.addProject({ path: 'g/p', members: [{ userId: user, accessLevel: 30 }] });
    const token = other.addToken(user, { scopes: ['api'], expiresAt: '2027-01-01' });
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: other.baseUrl, token });
    assert.equal(created.status, 201, created.text);
    await other.close();
    const run = await runToEnd(alice, { connectionId: created.json.id, project: 'g/p', command: ['true'] });
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'gitlab_unreachable');
    await assertNothingLeftBehind();
  });

  test('a hanging agent is killed at its timeout; a canceled one stops', async () => {
    const { id } = await connect(['api']);
    const timedOut = await runToEnd(alice, {
      connectionId: id,
      project: 'acme/platform/api',
      command: ['sh', '-c', `sleep ${HANG} & sleep ${HANG} & wait`],
      timeoutSeconds: 3,
    });
    assert.equal(timedOut.status, 'timed_out');
    assert.equal(timedOut.error.code, 'timed_out');

    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', {
      connectionId: id,
      project: 'acme/platform/api',
      command: ['sh', '-c', `echo waiting; sleep ${HANG}`],
    });
    for (;;) {
      const log = await logText(started.json.id);
      if (log.includes('waiting')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal((await forgelink.call(bob, 'POST', `/api/v1/runs/${started.json.id}/cancel`)).status, 404);
    const canceled = await forgelink.call(alice, 'POST', `/api/v1/runs/${started.json.id}/cancel`);
    assert.equal(canceled.status, 202);
    await forgelink.runs.idle();
    const final = (await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`)).json;
    assert.equal(final.status, 'canceled');
    // Canceling a run that already ended is 409 run_finished, naming the status it ended with.
    for (const [run, status] of [[timedOut, 'timed_out'], [final, 'canceled']]) {
      const again = await forgelink.call(alice, 'POST', `/api/v1/runs/${run.id}/cancel`);
      assert.equal(again.status, 409, again.text);
      assert.equal(again.json.error.code, 'run_finished');
      assert.equal(again.json.error.message, `Run ${run.id} has already ended (${status}).`);
    }
    const stray = async () => {
      const found = [];
      for (const pid of await readdir('/proc')) {
        if (!/^\d+$/.test(pid)) continue;
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
        if (cmdline.includes(`sleep\u0000${HANG}`)) found.push(pid);
      }
      return found;
    };
    // The kernel tears a killed pid namespace down asynchronously.
    await waitFor('the stopped runs\' processes to end', async () => (await stray()).length === 0).catch(() => {});
    assert.deepEqual(await stray(), [], 'a process of a stopped run survived');
    await assertNothingLeftBehind();
  });

  test("runs belong to their user; bad input is a 4xx naming the field", async () => {
    const { id } = await connect(['api']);
    const mine = await runToEnd(alice, { connectionId: id, project: 'acme/platform/api', command: ['true'] });
    assert.equal((await forgelink.call(bob, 'GET', `/api/v1/runs/${mine.id}`)).status, 404);
    assert.equal((await forgelink.call(bob, 'GET', `/api/v1/runs/${mine.id}/log`)).status, 404);
    assert.deepEqual((await forgelink.call(bob, 'GET', '/api/v1/runs')).json.runs, []);
    for (const [body, status, field] of [
      [{ connectionId: id, project: 'acme/platform/api', command: [] }, 400, 'command'],
      [{ connectionId: id, project: 'not a path', command: ['true'] }, 400, 'project'],
      [{ connectionId: id, project: 'acme/platform/api', branch: 'bad..name', command: ['true'] }, 400, 'branch'],
      [{ connectionId: id, project: 'acme/platform/api', command: ['true'], allowHosts: ['example.com'] }, 400, 'allowHosts'],
      [{ connectionId: id, project: 'acme/platform/api', command: ['true'], timeoutSeconds: 999999 }, 400, 'timeoutSeconds'],
      [{ connectionId: 'con_nope', project: 'acme/platform/api', command: ['true'] }, 404, 'connectionId'],
    ] as const) {
      const response = await forgelink.call(alice, 'POST', '/api/v1/runs', body);
      assert.equal(response.status, status, response.text);
      assert.equal(response.json.error.field, field, response.text);
    }
    const foreign = await forgelink.call(bob, 'POST', '/api/v1/runs', { connectionId: id, project: 'acme/platform/api', command: ['true'] });
    assert.equal(foreign.status, 404);
  });

  test('the log streams as server-sent events until the run ends', async () => {
    const { id } = await connect(['api']);
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', {
      connectionId: id,
      project: 'acme/platform/api',
      command: ['sh', '-c', 'for i in 1 2 3; do echo line-$i; sleep 0.2; done'],
    });
    const response = await forgelink.app.request(`/api/v1/runs/${started.json.id}/log`, {
      headers: { authorization: `Bearer ${alice.apiKey}`, accept: 'text/event-stream' },
    });
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    const text = await response.text();
    assert.match(text, /event: log\ndata: .*line-1/);
    assert.match(text, /line-3/);
    assert.match(text, /event: end\ndata: .*"status":"succeeded"/);
  });

  test('restart recovery: an in-flight run is marked interrupted and its files removed; a queued one runs', async () => {
    const { id } = await connect(['api']);
    const base = await runToEnd(alice, { connectionId: id, project: 'acme/platform/api', command: ['true'] });
    const store = forgelink.storage.runs;
    const interrupted = { ...(await store.getRunById(base.id))!, id: 'run_interrupted', status: 'running' as const, finishedAt: null };
    await store.createRun(interrupted);
    const queued = { ...(await store.getRunById(base.id))!, id: 'run_requeued', status: 'queued' as const, finishedAt: null, startedAt: null };
    await store.createRun(queued);
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(path.join(forgelink.workDir, 'runs', 'run_interrupted', 'workspace'), { recursive: true });
    await writeFile(path.join(forgelink.workDir, 'runs', 'run_interrupted', 'workspace', 'x'), 'x');

    const result = await forgelink.runs.recover();
    assert.deepEqual(result, { interrupted: 1, requeued: 1 });
    await forgelink.runs.idle();
    const after1 = await store.getRunById('run_interrupted');
    assert.equal(after1?.status, 'failed');
    assert.equal(after1?.error?.code, 'interrupted');
    assert.equal((await store.getRunById('run_requeued'))?.status, 'succeeded');
    await assertNothingLeftBehind();
  });

  test('no token in the database file after all these runs', async () => {
    const rows = await forgelink.storage.db.selectFrom('run_logs').select('text').execute();
    const runsRows = await forgelink.storage.db.selectFrom('runs').selectAll().execute();
    const everything = JSON.stringify(rows) + JSON.stringify(runsRows) + forgelink.logs.join('');
    for (const token of tokens) assert.ok(!everything.includes(token), 'a token leaked into the runs tables or logs');
  });
});

describe('egress from a run', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let other: Server;
  let otherPort: number;

  before(async () => {
    gitlab = await startFakeGitLab();
    other = createServer((_req, res) => res.end('other-server-answered'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherPort = (other.address() as { port: number }).port;
    forgelink = await startForgelink({ runs: { userHostPatterns: [`127.0.0.1:${otherPort}`] } });
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
    await new Promise((resolve) => other.close(resolve));
  });

  test('GitLab is reachable, another local server is not — through the proxy or directly — unless the run allows it', async () => {
    const alice = await forgelink.addUser('alice');
    const bot = gitlab.addUser({ username: 'bot' }).id;
    gitlab.addProject({ path: 'g/app', members: [{ userId: bot, accessLevel: 30 }] });
    const token = gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-01-01' });
    const connection = (await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, token })).json;
    const script = [
      `curl -s -o /dev/null -w "gitlab:%{http_code}\\n" "$GITLAB_OAUTH_BASE_URL/api/v4/version" -H "PRIVATE-TOKEN: $GITLAB_TOKEN"`,
      `curl -s -o /dev/null -w "other-proxied:%{http_code}\\n" http://127.0.0.1:${otherPort}/`,
      `curl -s --noproxy '*' --max-time 3 http://127.0.0.1:${otherPort}/ && echo other-direct:reached || echo other-direct:failed`,
    ].join('\n');
    const run = async (allowHosts: string[]) => {
      const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: connection.id, project: 'g/app', command: ['sh', '-c', script], allowHosts });
      assert.equal(started.status, 201, started.text);
      await forgelink.runs.idle();
      const final = (await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`)).json;
      const log = (await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}/log`)).json.entries.map((e: { text: string }) => e.text).join('');
      return { final, log };
    };
    const closed = await run([]);
    assert.match(closed.log, /gitlab:200/);
    assert.match(closed.log, /other-proxied:403/);
    assert.match(closed.log, /other-direct:failed/);
    assert.ok(closed.final.egress.refused.includes(`127.0.0.1:${otherPort}`), JSON.stringify(closed.final.egress));

    // Only GitLab, brokered: the broker saw every request, none a write, so there is nothing to collect.
    assert.match(closed.log, /Collecting outputs: none; the agent sent GitLab no write/);

    const opened = await run([`127.0.0.1:${otherPort}`]);
    assert.match(opened.log, /other-proxied:200/);
    assert.match(opened.log, /other-direct:failed/);
    // Another origin is open, through a tunnel the broker does not see into: the outputs are collected as always.
    assert.match(opened.log, /^Collecting outputs$/m);
    assert.doesNotMatch(opened.log, /Collecting outputs: none/);
  });
});
