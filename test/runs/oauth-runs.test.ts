import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { oauthRedirectUri } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { EXAMPLES_DIR, startForgelink, TEST_PUBLIC_URL, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { waitFor } from '../support/wait.ts';

const AGENT = ['python3', path.join(EXAMPLES_DIR, 'scripted-agent.py')];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Lifetime of the first token of a connection that a test lets expire: long enough to connect on a busy machine. */
const SHORT_LIFETIME_SECONDS = 60;
/** forgelink's clock: the wall clock, moved forward when a token must have expired. */
let clockOffsetMs = 0;
const clock = { now: () => new Date(Date.now() + clockOffsetMs) };

describe('runs on an OAuth connection (real bubblewrap, fake GitLab over HTTPS under a subpath)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let botId: number;
  let projectId: number;
  let dispatcher: Agent;
  let sessions = 0;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'oauth-agent', name: 'OAuth Agent' }).id;
    projectId = gitlab.addProject({ path: 'acme/service', members: [{ userId: botId, accessLevel: 30 }] }).id;
    gitlab.oauthAutoApprove(botId);
    const app = gitlab.addOAuthApplication({ redirectUri: oauthRedirectUri(TEST_PUBLIC_URL), scopes: ['api', 'read_user'] });
    forgelink = await startForgelink({
      clock,
      runs: { concurrency: 3 },
      // Tokens in these tests live seconds, not hours: refresh only when one has less than a second left.
      oauth: {
        apps: [{ baseUrl: gitlab.baseUrl, clientId: app.clientId, clientSecret: app.clientSecret, caPem: gitlab.caPem }],
        refreshMarginMs: 1_000,
      },
    });
    alice = await forgelink.addUser('alice');
    dispatcher = new Agent({ connect: { ca: gitlab.caPem ?? undefined } });
  });
  after(async () => {
    await dispatcher.close();
    await forgelink.close();
    await gitlab.close();
  });

  /** Connects alice's GitLab account through OAuth; its first access token lives `lifetimeSeconds`. */
  async function connect(lifetimeSeconds: number): Promise<string> {
    gitlab.setOAuthTokenLifetime(lifetimeSeconds);
    const sessionId = `s${++sessions}`;
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId, baseUrl: gitlab.baseUrl });
    const response = await fetch(authorizeUrl, { redirect: 'manual', dispatcher });
    const query = Object.fromEntries(new URL(response.headers.get('location') ?? '').searchParams);
    const connection = await forgelink.oauthFlow.finish({ userId: alice.id, sessionId, query });
    return connection.id;
  }

  /**
   * Lets the short-lived tokens expire without waiting: GitLab ages every token pair past its lifetime, and
   * forgelink's clock moves on by that lifetime.
   */
  function expireTokens(): void {
    for (const pair of gitlab.oauthTokens()) gitlab.expireOAuthToken(pair.token);
    clockOffsetMs += SHORT_LIFETIME_SECONDS * 1000;
  }

  async function start(body: Record<string, unknown>): Promise<string> {
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', body);
    assert.equal(started.status, 201, started.text);
    return started.json.id;
  }

  async function finished(id: string): Promise<any> {
    for (;;) {
      const current = await forgelink.call(alice, 'GET', `/api/v1/runs/${id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await sleep(100);
    }
  }

  async function logText(id: string): Promise<string> {
    return (await forgelink.call(alice, 'GET', `/api/v1/runs/${id}/log`)).json.entries.map((entry: { text: string }) => entry.text).join('');
  }

  function everyOAuthToken(): string[] {
    return gitlab.oauthTokens().flatMap((pair) => [pair.token, pair.refreshToken]);
  }

  test('the scripted agent pushes, opens a merge request and files an issue with an OAuth token', async () => {
    const connectionId = await connect(7200);
    const run = await finished(await start({ connectionId, project: 'acme/service', command: AGENT }));
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.outputs.branches.length, 1);
    assert.equal(run.outputs.mergeRequests.length, 1);
    assert.equal(run.outputs.mergeRequests[0].detectedBy, 'api');
    assert.equal(run.outputs.issues.length, 1);
    const log = await logText(run.id);
    for (const token of everyOAuthToken()) assert.ok(!log.includes(token));
  });

  test('three runs at once on a connection whose token has expired: one refresh, all succeed', async () => {
    const connectionId = await connect(SHORT_LIFETIME_SECONDS);
    gitlab.setOAuthTokenLifetime(7200);
    expireTokens();
    const refreshes = gitlab.oauthStats().refreshes;
    const script = (n: number) =>
      `set -e; git checkout -q -b agent/parallel-${n}; echo ${n} > p${n}.txt; git add p${n}.txt; git commit -qm p${n}; git push -q origin agent/parallel-${n}`;
    const ids = await Promise.all([1, 2, 3].map((n) => start({ connectionId, project: 'acme/service', command: ['sh', '-c', script(n)] })));
    const runs = await Promise.all(ids.map(finished));
    for (const run of runs) assert.equal(run.status, 'succeeded', JSON.stringify(run.error) + (await logText(run.id)));
    assert.equal(gitlab.oauthStats().refreshes - refreshes, 1, 'exactly one refresh reached GitLab');
    const branches = gitlab.branches(projectId).map((branch) => branch.name);
    for (const n of [1, 2, 3]) assert.ok(branches.includes(`agent/parallel-${n}`));
    const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${connectionId}`);
    assert.equal(shown.json.status, 'active');
  });

  test('a token that expires while the agent works is refreshed for its push, and no token reaches the log', async () => {
    const connectionId = await connect(SHORT_LIFETIME_SECONDS);
    gitlab.setOAuthTokenLifetime(7200);
    const refreshes = gitlab.oauthStats().refreshes;
    const script = [
      'set -e',
      'first="$GITLAB_TOKEN"',
      'echo "started with $GITLAB_TOKEN"',
      // Work until the token the run started with has died; an API client would then re-read it from forgelink.
      'status() { curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $first" "$GITLAB_OAUTH_BASE_URL/api/v4/user"; }',
      'while [ "$(status)" = 200 ]; do sleep 0.2; done',
      'echo "old token answers $(status)"',
      'git checkout -q -b agent/late-push',
      'echo late > late.txt && git add late.txt && git commit -qm late',
      'git push -q origin agent/late-push',
      'fresh=$(curl -fsS http://forgelink.internal/token)',
      'test "$fresh" != "$first" && echo "fresh token differs"',
      'echo "now using $fresh"',
      'echo PUSHED',
    ].join('\n');
    // Direct mode: the sandbox holds the real token and asks forgelink for a fresh one (brokered-runs.test.ts has the brokered case).
    const id = await start({ connectionId, project: 'acme/service', command: ['sh', '-c', script], timeoutSeconds: 120, credentials: 'direct' });
    await waitFor('the agent to start working', async () => (await logText(id)).includes('started with'));
    expireTokens();
    const run = await finished(id);
    const log = await logText(run.id);
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    assert.match(log, /^old token answers 401$/m);
    assert.match(log, /^fresh token differs$/m);
    assert.match(log, /^PUSHED$/m);
    assert.match(log, /^started with \[REDACTED\]$/m);
    assert.match(log, /^now using \[REDACTED\]$/m);
    assert.ok(gitlab.oauthStats().refreshes - refreshes >= 1, 'the token was refreshed during the run');
    assert.deepEqual(run.outputs.branches.map((branch: { name: string }) => branch.name), ['agent/late-push']);
    assert.ok(gitlab.branches(projectId).some((branch) => branch.name === 'agent/late-push'));
    const tokens = everyOAuthToken();
    for (const token of tokens) assert.ok(!log.includes(token), 'an OAuth token reached the run log');
    const stored = JSON.stringify(await forgelink.storage.db.selectFrom('run_logs').select('text').execute()) + forgelink.logs.join('');
    for (const token of tokens) assert.ok(!stored.includes(token), 'an OAuth token reached the database or the server log');
  });

  test('brokered: a token that expires while the agent works is replaced at the broker; the agent never notices', async () => {
    const connectionId = await connect(SHORT_LIFETIME_SECONDS);
    gitlab.setOAuthTokenLifetime(7200);
    const refreshes = gitlab.oauthStats().refreshes;
    const script = [
      'set -e',
      'echo "started with $GITLAB_TOKEN"',
      'api() { printf "Authorization: Bearer %s\\n" "$GITLAB_TOKEN" | curl -s -H @- -o /dev/null -w "%{http_code}" "$GITLAB_OAUTH_BASE_URL/api/v4/user"; }',
      'echo "api before: $(api)"',
      // The test expires the token GitLab issued first, then lets the agent go on.
      'until [ -e /workspace/.expired ]; do sleep 0.1; done',
      'echo "api after: $(api)"',
      'git checkout -q -b agent/brokered-late',
      'echo late > late.txt && git add late.txt && git commit -qm late',
      'git push -q origin agent/brokered-late',
      'echo "internal: $(curl -s -o /dev/null -w "%{http_code}" http://forgelink.internal/token)"',
      'echo "still $GITLAB_TOKEN"',
    ].join('\n');
    const id = await start({ connectionId, project: 'acme/service', command: ['sh', '-c', script], timeoutSeconds: 120 });
    await waitFor('the agent to start working', async () => (await logText(id)).includes('api before:'));
    const first = gitlab.oauthTokens().at(-1)?.token ?? '';
    expireTokens();
    const stale = await fetch(`${gitlab.baseUrl}/api/v4/user`, { headers: { authorization: `Bearer ${first}` }, dispatcher });
    assert.equal(stale.status, 401, 'the token the run started with is dead at GitLab');
    await writeFile(path.join(forgelink.workDir, 'runs', id, 'workspace', '.expired'), '');
    const run = await finished(id);
    const log = await logText(run.id);
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    assert.equal(run.credentials, 'brokered');
    const surrogate = /^started with (glpat-\S+)$/m.exec(log)?.[1];
    assert.ok(surrogate, log);
    assert.match(log, new RegExp(`^still ${surrogate}$`, 'm'), 'the agent kept the same surrogate throughout');
    assert.match(log, /^api before: 200$/m);
    assert.match(log, /^api after: 200$/m);
    // A brokered sandbox gets no real token, not even a fresh one.
    assert.match(log, /^internal: 403$/m);
    assert.ok(gitlab.oauthStats().refreshes - refreshes >= 1, 'the token was refreshed during the run');
    assert.ok(gitlab.branches(projectId).some((branch) => branch.name === 'agent/brokered-late'));
    for (const token of everyOAuthToken()) assert.ok(!log.includes(token), 'an OAuth token reached the run log');
  });

  test('a run on an authorization the user revoked at GitLab fails at once and marks the connection revoked', async () => {
    const connectionId = await connect(SHORT_LIFETIME_SECONDS);
    gitlab.setOAuthTokenLifetime(7200);
    expireTokens();
    const pair = gitlab.oauthTokens().at(-1);
    assert.ok(pair);
    gitlab.revokeOAuthToken(pair.token);
    const run = await finished(await start({ connectionId, project: 'acme/service', command: ['true'] }));
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'gitlab_token_revoked');
    assert.match(run.error.message, /Reconnect/);
    const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${connectionId}`);
    assert.equal(shown.json.status, 'revoked');
  });

  test('the internal token address answers only GET /token, and is refused for a personal access token run', async () => {
    const token = gitlab.addToken(botId, { scopes: ['api'], expiresAt: '2027-06-30' });
    const pat = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(pat.status, 201, pat.text);
    const probe = 'curl -s -o /dev/null -w "token:%{http_code}\\n" http://forgelink.internal/token; curl -s -o /dev/null -w "other:%{http_code}\\n" http://forgelink.internal/other';
    const patRun = await finished(await start({ connectionId: pat.json.id, project: 'acme/service', command: ['sh', '-c', probe], credentials: 'direct' }));
    assert.match(await logText(patRun.id), /token:403/);
    const oauthRun = await finished(await start({ connectionId: await connect(7200), project: 'acme/service', command: ['sh', '-c', probe], credentials: 'direct' }));
    const log = await logText(oauthRun.id);
    assert.match(log, /token:200/);
    assert.match(log, /other:404/);
    assert.deepEqual(oauthRun.egress.refused, [], 'the internal address is not egress');
  });
});
