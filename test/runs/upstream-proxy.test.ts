import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { parseUpstreamProxy, type ConnectionNotification, type UpstreamProxy } from '../../src/core/index.ts';
import { GitLabHttp, oauthRedirectUri } from '../../src/gitlab/index.ts';
import { createWebhookNotifier } from '../../src/notify/index.ts';
import { startConnectProxy, type ConnectProxy } from '../../testing/connect-proxy/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { EXAMPLES_DIR, startForgelink, TEST_PUBLIC_URL, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';

const AGENT = ['python3', path.join(EXAMPLES_DIR, 'scripted-agent.py')];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let clockOffsetMs = 0;
const clock = { now: () => new Date(Date.now() + clockOffsetMs) };

/**
 * FORGELINK_UPSTREAM_PROXY (README.md, "One egress address"): forgelink's own GitLab calls, the OAuth token exchange and
 * refresh, the doctor's probes, the notification webhook and every run's egress (git clone and push, the agent's API
 * calls) reach GitLab through the operator's CONNECT proxy. The fake GitLab records every TCP connection it accepts
 * and the proxy the local port of every tunnel it opened, so the test sees that each connection GitLab got came out
 * of the proxy: nothing went around it.
 */
describe('the upstream proxy carries every outbound connection (real bubblewrap, fake GitLab over HTTPS)', () => {
  let gitlab: FakeGitLab;
  let proxy: ConnectProxy;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let dispatcher: Agent;

  before(async () => {
    proxy = await startConnectProxy();
    gitlab = await startFakeGitLab({ tls: true });
    const botId = gitlab.addUser({ username: 'proxied-agent' }).id;
    gitlab.addProject({ path: 'acme/service', members: [{ userId: botId, accessLevel: 30 }] });
    gitlab.oauthAutoApprove(botId);
    const app = gitlab.addOAuthApplication({ redirectUri: oauthRedirectUri(TEST_PUBLIC_URL), scopes: ['api', 'read_user'] });
    forgelink = await startForgelink({
      clock,
      oauth: { apps: [{ baseUrl: gitlab.baseUrl, clientId: app.clientId, clientSecret: app.clientSecret, caPem: gitlab.caPem }], refreshMarginMs: 1_000 },
      env: { FORGELINK_UPSTREAM_PROXY: proxy.url },
    });
    alice = await forgelink.addUser('alice');
    // The test's own browser stand-in talks to GitLab directly: its connections are told apart by port below.
    dispatcher = new Agent({ connect: { ca: gitlab.caPem ?? undefined } });
  });
  after(async () => {
    await dispatcher.close();
    await forgelink.close();
    await gitlab.close();
    await proxy.close();
  });

  /** GitLab's connections that did not come out of a proxy tunnel, leaving out the test's own (`ownPorts`). */
  function bypassing(ownPorts: Set<number>): { remotePort: number }[] {
    const tunnelled = new Set(proxy.tunnels.map((tunnel) => tunnel.upstreamLocalPort));
    return gitlab.connections.filter((connection) => !tunnelled.has(connection.remotePort) && !ownPorts.has(connection.remotePort));
  }

  test('OAuth connect and refresh, a run that clones, pushes and calls the API, and the doctor: all through the proxy', async () => {
    const ownPorts = new Set<number>();
    const seenBefore = gitlab.connections.length;
    gitlab.setOAuthTokenLifetime(60);
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's1', baseUrl: gitlab.baseUrl });
    const response = await fetch(authorizeUrl, { redirect: 'manual', dispatcher });
    for (const connection of gitlab.connections.slice(seenBefore)) ownPorts.add(connection.remotePort);
    const query = Object.fromEntries(new URL(response.headers.get('location') ?? '').searchParams);
    const connection = await forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's1', query });
    const tunnelsAfterConnect = proxy.tunnels.length;
    assert.ok(tunnelsAfterConnect > 0, 'the token exchange and the account check went through the proxy');

    // Expire the pair: the run's token comes from a refresh, through the proxy too.
    const refreshes = gitlab.oauthStats().refreshes;
    gitlab.setOAuthTokenLifetime(7200);
    for (const pair of gitlab.oauthTokens()) gitlab.expireOAuthToken(pair.token);
    clockOffsetMs += 60_000;

    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: connection.id, project: 'acme/service', command: AGENT });
    assert.equal(started.status, 201, started.text);
    let run: any;
    for (;;) {
      run = (await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`)).json;
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(run.status)) break;
      await sleep(100);
    }
    const log = (await forgelink.call(alice, 'GET', `/api/v1/runs/${run.id}/log`)).json.entries.map((entry: { text: string }) => entry.text).join('');
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    // forgelink's clock runs a minute ahead here, so its "created since the run began" filter misses the merge request;
    // the agent's own API calls opened it, through the proxy like the rest.
    assert.equal(run.outputs.branches.length, 1);
    assert.match(log, /Opened merge request !1/);
    assert.equal(gitlab.oauthStats().refreshes - refreshes, 1, 'the run refreshed the expired token');
    assert.match(await forgelink.metrics.render(), /^forgelink_oauth_token_refreshes_total\{outcome="refreshed"\} 1$/m);

    const doctor = await forgelink.call(alice, 'POST', `/api/v1/connections/${connection.id}/doctor`);
    assert.equal(doctor.status, 200, doctor.text);
    const steps = Object.fromEntries(doctor.json.steps.map((step: { id: string; status: string }) => [step.id, step.status]));
    assert.equal(steps.tcp, 'pass');
    assert.equal(steps.tls, 'pass');

    const gitlabPort = new URL(gitlab.baseUrl).port;
    assert.ok(proxy.tunnels.length > tunnelsAfterConnect + 3, `the run's git and API traffic was tunnelled (${proxy.tunnels.length} tunnels)`);
    for (const tunnel of proxy.tunnels) assert.equal(tunnel.target, `127.0.0.1:${gitlabPort}`);
    assert.deepEqual(proxy.refused, []);
    assert.ok(gitlab.connections.length > ownPorts.size);
    assert.deepEqual(bypassing(ownPorts), [], 'every connection GitLab accepted from forgelink came out of a proxy tunnel');
  });

  test('the outbound-address policy still judges the target: a refused address never reaches the proxy', async () => {
    const upstreamProxy = parseUpstreamProxy(proxy.url) as UpstreamProxy;
    const before = proxy.tunnels.length;
    const connectionsBefore = proxy.connections();
    for (const baseUrl of ['http://169.254.169.254', gitlab.baseUrl]) {
      const client = GitLabHttp.create({ baseUrl, policy: { allow: [], upstreamProxy }, maxRetries: 0, timeoutMs: 5_000, caPem: gitlab.caPem });
      await assert.rejects(client.send('GET', client.url('/version')), (error: { reason?: string }) => error.reason === 'blocked_address');
      await client.close();
    }
    assert.equal(proxy.tunnels.length, before);
    assert.equal(proxy.connections(), connectionsBefore);
  });

  test('the notification webhook is delivered through the proxy', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const upstreamProxy = parseUpstreamProxy(proxy.url) as UpstreamProxy;
      const notifier = createWebhookNotifier({
        url: receiver.url,
        secret: null,
        policy: { allow: ['127.0.0.0/8'], upstreamProxy },
        logger: { info() {}, warn() {} },
      });
      const before = proxy.tunnels.length;
      const notification: ConnectionNotification = {
        event: 'connection.status_changed',
        at: new Date().toISOString(),
        connection: { id: 'con_1', label: 'work', host: 'gitlab.example.com', account: null, expiresAt: null, status: 'revoked' },
        ownerName: 'alice',
        reason: 'revoked',
        previousStatus: 'active',
      };
      notifier.notify(notification);
      await notifier.idle();
      await notifier.close();
      assert.equal(receiver.deliveries.length, 1);
      assert.deepEqual(
        proxy.tunnels.slice(before).map((tunnel) => tunnel.target),
        [`127.0.0.1:${new URL(receiver.url).port}`],
      );
    } finally {
      await receiver.close();
    }
  });
});
