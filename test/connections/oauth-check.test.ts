import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { oauthRedirectUri } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, TEST_PUBLIC_URL, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { testMonitor } from '../support/monitor.ts';

const HOUR = 3600_000;

/** "Check now" and the health monitor on OAuth connections, against the fake's /oauth/token/info (issue 10, point 4). */
describe('checking an OAuth connection', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let botId: number;
  let dispatcher: Agent;
  let sessions = 0;
  // The monitor's time: moved forward so a connection becomes due; GitLab keeps real time.
  let now = Date.now();
  const clock = { now: () => new Date(now) };

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'oauth-bot', name: 'OAuth Bot' }).id;
    gitlab.oauthAutoApprove(botId);
    const app = gitlab.addOAuthApplication({ redirectUri: oauthRedirectUri(TEST_PUBLIC_URL), scopes: ['api', 'read_user'] });
    forgelink = await startForgelink({
      clock,
      oauth: { apps: [{ baseUrl: gitlab.baseUrl, clientId: app.clientId, clientSecret: app.clientSecret, caPem: gitlab.caPem }] },
    });
    alice = await forgelink.addUser('alice');
    dispatcher = new Agent({ connect: { ca: gitlab.caPem ?? undefined } });
  });
  after(async () => {
    await dispatcher.close();
    await forgelink.close();
    await gitlab.close();
  });

  /** Connects alice through OAuth; returns the connection id and its access token. */
  async function connect(): Promise<{ id: string; accessToken: string }> {
    const sessionId = `s${++sessions}`;
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId, baseUrl: gitlab.baseUrl });
    const response = await fetch(authorizeUrl, { redirect: 'manual', dispatcher });
    const query = Object.fromEntries(new URL(response.headers.get('location') ?? '').searchParams);
    const view = await forgelink.oauthFlow.finish({ userId: alice.id, sessionId, query });
    const accessToken = gitlab.oauthTokens().at(-1)?.token;
    assert.ok(accessToken);
    return { id: view.id, accessToken };
  }

  async function events(id: string): Promise<{ from: string; to: string; reason: string | null }[]> {
    const answer = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}/events`);
    assert.equal(answer.status, 200, answer.text);
    return answer.json.events;
  }

  test('an access token GitLab has expired: "Check now" refreshes it once, the status stays active, no status change', async () => {
    const { id, accessToken } = await connect();
    // forgelink still believes the token has two hours left; GitLab says it is over.
    gitlab.expireOAuthToken(accessToken);
    const refreshesBefore = gitlab.oauthStats().refreshes;

    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
    assert.equal(checked.status, 200, checked.text);
    assert.equal(checked.json.status, 'active', checked.json.statusReason);
    assert.equal(checked.json.statusReason, null);
    assert.equal(gitlab.oauthStats().refreshes - refreshesBefore, 1, 'exactly one refresh at GitLab');
    assert.deepEqual(await events(id), []);
    const audit = await forgelink.storage.audit.list({ ownerId: alice.id, connectionId: id });
    assert.ok(!audit.some((entry) => entry.action === 'connection.status_changed'));
  });

  test('the health monitor does the same: one refresh, still active, nothing to report', async () => {
    const { id, accessToken } = await connect();
    gitlab.expireOAuthToken(accessToken);
    const refreshesBefore = gitlab.oauthStats().refreshes;
    const monitor = testMonitor(forgelink, clock);
    try {
      now += HOUR + 1;
      const report = await monitor.tick();
      assert.ok(report.checked >= 1, JSON.stringify(report));
      assert.equal(report.changed, 0, JSON.stringify(report));
    } finally {
      await monitor.stop();
    }
    const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`);
    assert.equal(shown.json.status, 'active', shown.json.statusReason);
    assert.equal(gitlab.oauthStats().refreshes - refreshesBefore, 1);
    assert.deepEqual(await events(id), []);
  });

  test('a revoked grant: "Check now" marks the connection revoked and says why', async () => {
    const { id, accessToken } = await connect();
    gitlab.revokeOAuthToken(accessToken);

    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
    assert.equal(checked.status, 200, checked.text);
    assert.equal(checked.json.status, 'revoked');
    assert.match(checked.json.statusReason, /no longer accepts this connection's authorization.*Reconnect/);
    const [transition, ...more] = await events(id);
    assert.deepEqual(more, []);
    assert.deepEqual({ from: transition?.from, to: transition?.to }, { from: 'active', to: 'revoked' });
    assert.equal(transition?.reason, checked.json.statusReason);
  });
});
