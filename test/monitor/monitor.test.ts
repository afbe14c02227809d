import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { connectionLine } from '../../src/cli/format.ts';
import { createConnectionService } from '../../src/connections/index.ts';
import { createHealthMonitor, type HealthMonitorDeps } from '../../src/monitor/index.ts';
import { createTokenProvider } from '../../src/tokens/index.ts';
import { newId, type Clock, type Notifier, type Vault } from '../../src/core/index.ts';
import { createGitLabOAuthClients, createGitLabProbe, gitlabClientFactory } from '../../src/gitlab/index.ts';
import { createWebhookNotifier } from '../../src/notify/index.ts';
import { openStorage, type Storage } from '../../src/storage/index.ts';
import { createVault } from '../../src/vault/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { databases } from '../support/databases.ts';
import { startForgelink, TEST_PUBLIC_URL, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { newUser } from '../support/records.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { csrfOf, webClient } from '../web/client.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const SECRET = 'webhook-signing-secret';

/** A date `days` after `from` as GitLab writes expiry dates (UTC). */
function inDays(days: number, from: number): string {
  return new Date(from + days * DAY).toISOString().slice(0, 10);
}

function silentLogger() {
  const lines: string[] = [];
  const log = (meta: object, message: string) => void lines.push(`${message} ${JSON.stringify(meta)}`);
  return { lines, debug: log, info: log, warn: log, error: log };
}

for (const database of ['sqlite', 'postgres'] as const) {
  describe(`connection health monitor on ${database}`, () => {
    let gitlab: FakeGitLab;
    let forgelink: TestForgelink;
    let receiver: WebhookReceiver;
    let notifier: Notifier;
    let alice: TestUser;
    let botId: number;
    // The monitor's time; the fake GitLab keeps real time, so expiry dates are written from the real date.
    let now = Date.now();
    const clock = { now: () => new Date(now) };
    const monitors: { stop(): Promise<void> }[] = [];

    before(async () => {
      gitlab = await startFakeGitLab({ tls: true });
      botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
      gitlab.addProject({ path: 'acme/api', members: [{ userId: botId, accessLevel: 30 }] });
      forgelink = await startForgelink({ database, clock });
      alice = await forgelink.addUser('alice');
    });
    after(async () => {
      await forgelink.close();
      await gitlab.close();
    });
    beforeEach(async () => {
      receiver = await startWebhookReceiver();
      notifier = createWebhookNotifier({ url: receiver.url, secret: SECRET, policy: { allow: ['127.0.0.0/8'] }, logger: silentLogger(), sleep: async () => {} });
    });
    afterEach(async () => {
      for (const monitor of monitors.splice(0)) await monitor.stop();
      // Connections of one test must not be due in the next.
      for (const connection of await forgelink.storage.connections.listConnections(alice.id)) {
        await forgelink.storage.connections.deleteConnection(alice.id, connection.id);
      }
      await notifier.close();
      await receiver.close();
    });

    function monitor(overrides: Partial<HealthMonitorDeps> = {}) {
      const storage = forgelink.storage;
      const created = createHealthMonitor({
        store: storage.connections,
        check: (userId, id) => forgelink.connections.check(userId, id, { actor: 'system', reason: 'monitor' }),
        events: storage.connectionEvents,
        leases: storage.leases,
        users: storage.users,
        notifier,
        clock,
        logger: silentLogger(),
        intervalMs: HOUR,
        jitterMs: 0,
        ...overrides,
      });
      monitors.push(created);
      return created;
    }

    async function connect(options: { expiresAt?: string; label?: string } = {}): Promise<{ id: string; token: string }> {
      const token = gitlab.addToken(botId, { scopes: ['read_repository', 'write_repository'], expiresAt: options.expiresAt ?? inDays(200, now) });
      const response = await forgelink.call(alice, 'POST', '/api/v1/connections', {
        baseUrl: gitlab.baseUrl,
        caPem: gitlab.caPem,
        token,
        ...(options.label === undefined ? {} : { label: options.label }),
      });
      assert.equal(response.status, 201, response.text);
      return { id: response.json.id, token };
    }

    function tokenChecks(): number {
      return gitlab.requests.filter((request) => request.path === '/api/v4/personal_access_tokens/self').length;
    }

    test('a token revoked at GitLab: the monitor marks the connection revoked, records why, tells the webhook, and runs are refused', async () => {
      const { id, token } = await connect({ label: 'work' });
      const health = monitor();
      assert.equal((await health.tick()).checked, 0, 'just connected: not due');

      gitlab.revokeToken(token);
      now += HOUR + 1;
      const report = await health.tick();
      assert.deepEqual(report, { leader: true, checked: 1, changed: 1, deferred: 0, notified: 1 });

      const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`);
      assert.equal(shown.json.status, 'revoked');
      const reason: string = shown.json.statusReason;
      assert.match(reason, /revoked/);
      const events = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}/events`);
      assert.equal(events.status, 200);
      assert.equal(events.json.events.length, 1);
      const [transition] = events.json.events;
      assert.deepEqual({ from: transition.from, to: transition.to, reason: transition.reason }, { from: 'active', to: 'revoked', reason });
      assert.ok(!Number.isNaN(Date.parse(transition.at)));
      const bob = await forgelink.addUser(`bob-${database}-${Date.now()}`);
      assert.equal((await forgelink.call(bob, 'GET', `/api/v1/connections/${id}/events`)).status, 404, 'another user: 404');

      const audit = await forgelink.storage.audit.list({ ownerId: alice.id, connectionId: id });
      const byMonitor = audit.filter((entry) => entry.actor === 'system' && entry.reason === 'monitor').map((entry) => entry.action);
      assert.ok(byMonitor.includes('connection.checked'), JSON.stringify(audit));
      assert.ok(byMonitor.includes('connection.status_changed'));

      await notifier.idle();
      assert.equal(receiver.deliveries.length, 1);
      const [delivery] = receiver.deliveries;
      assert.equal(delivery?.headers['x-forgelink-signature'], `sha256=${createHmac('sha256', SECRET).update(delivery?.body ?? '').digest('hex')}`);
      assert.deepEqual(delivery?.json, {
        event: 'connection.status_changed',
        at: transition.at,
        connection: { id, label: 'work', host: shown.json.host, account: null, expiresAt: shown.json.expiresAt, status: 'revoked' },
        ownerName: 'alice',
        reason,
        previousStatus: 'active',
      });
      assert.ok(!delivery?.body.includes(token), 'never the token');

      const refused = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: id, project: 'acme/api', command: ['true'] });
      assert.equal(refused.status, 409);
      assert.equal(refused.json.error.code, 'connection_revoked');
      assert.ok(refused.json.error.message.includes(`is revoked, so runs on it are refused: ${reason}`), refused.json.error.message);
      assert.match(refused.json.error.message, /reconnect/);

      now += HOUR + 1;
      const before = tokenChecks();
      assert.deepEqual(await health.tick(), { leader: true, checked: 0, changed: 0, deferred: 0, notified: 0 }, 'a revoked token is not checked again');
      assert.equal(tokenChecks(), before);
      await notifier.idle();
      assert.equal(receiver.deliveries.length, 1, 'and nothing is sent twice');
    });

    test('a run started before the monitor noticed fails with gitlab_token_revoked; the monitor then sends the transition the run recorded', async () => {
      const { id, token } = await connect();
      gitlab.revokeToken(token);
      const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: id, project: 'acme/api', command: ['true'] });
      assert.equal(started.status, 201, started.text);
      await forgelink.runs.idle();
      const run = await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`);
      assert.equal(run.json.status, 'failed');
      assert.equal(run.json.error.code, 'gitlab_token_revoked');
      assert.equal((await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`)).json.status, 'revoked');

      const report = await monitor().tick();
      assert.equal(report.checked, 0, 'not due: the run checked it');
      assert.equal(report.notified, 1);
      await notifier.idle();
      assert.equal(receiver.deliveries[0]?.json.event, 'connection.status_changed');
      assert.equal(receiver.deliveries[0]?.json.connection.status, 'revoked');

      const again = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: id, project: 'acme/api', command: ['true'] });
      assert.equal(again.status, 409);
      assert.equal(again.json.error.code, 'connection_revoked');
    });

    test('a token expiring in 3 days: expires_soon, a countdown in the list and on the dashboard, one connection.expiring (not again after another tick or a restart), then the 1-day one', async () => {
      // The tests before moved the monitor's time on by hours; back to the real time, so the monitor, the CLI line and
      // the dashboard all count from the same day (late in the UTC day they would not).
      now = Date.now();
      const expiresAt = inDays(3, now);
      const { id } = await connect({ expiresAt, label: 'soon' });
      const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`);
      assert.ok(shown.json.warnings.some((warning: { code: string }) => warning.code === 'expires_soon'));
      assert.match(connectionLine(shown.json, new Date(now)), /  expires in 3 days  /);

      const web = webClient(forgelink.app);
      const form = await web.get('/sign-in');
      await web.post('/sign-in', { _csrf: csrfOf(form.text), username: 'alice', password: alice.apiKey, next: '/integrations/gitlab' });
      const page = await web.get('/integrations/gitlab');
      assert.equal(page.status, 200);
      assert.match(page.text, /<span class="badge expiring" title="Expires on [0-9-]+">expires in 3 days<\/span>/);

      const first = monitor();
      assert.equal((await first.tick()).notified, 1);
      assert.equal((await first.tick()).notified, 0, 'a second tick sends nothing');
      await first.stop();
      assert.equal((await monitor({ holder: 'after-restart' }).tick()).notified, 0, 'nor does a restarted monitor');
      await notifier.idle();
      assert.equal(receiver.deliveries.length, 1);
      assert.deepEqual(receiver.deliveries[0]?.json, {
        event: 'connection.expiring',
        at: new Date(now).toISOString(),
        connection: { id, label: 'soon', host: shown.json.host, account: null, expiresAt, status: 'active' },
        ownerName: 'alice',
        reason: `The token expires in 3 days (${expiresAt}). Create a new one and reconnect.`,
        daysLeft: 3,
        thresholdDays: 7,
      });

      now += 2 * DAY;
      const later = await monitor({ holder: 'two-days-later' }).tick();
      assert.equal(later.notified, 1);
      assert.equal(later.checked, 1, 'due again, and still active');
      await notifier.idle();
      assert.equal(receiver.deliveries[1]?.json.daysLeft, 1);
      assert.equal(receiver.deliveries[1]?.json.thresholdDays, 1);
    });

    test('a 429 makes the monitor pause that instance for what GitLab asked, instead of hammering it', async () => {
      await connect();
      await connect();
      now += HOUR + 1;
      const health = monitor();
      // Longer than forgelink's HTTP layer waits (60 s), so the first 429 ends the check with rate_limited.
      gitlab.injectRateLimit({ count: 1, retryAfterSeconds: 90 });
      const before = tokenChecks();
      const limited = await health.tick();
      assert.deepEqual(limited, { leader: true, checked: 0, changed: 0, deferred: 2, notified: 0 });
      assert.equal(tokenChecks() - before, 1, 'one request, and the other connection was not tried');
      const statuses = (await forgelink.call(alice, 'GET', '/api/v1/connections')).json.connections.map((c: { status: string }) => c.status);
      assert.deepEqual(statuses, ['active', 'active'], 'a rate limit says nothing about the token');

      now += 60_000;
      assert.equal((await health.tick()).deferred, 2, 'still within the 90 s GitLab asked for');
      assert.equal(tokenChecks() - before, 1);

      now += 31_000;
      assert.equal((await health.tick()).checked, 2);
      assert.equal(tokenChecks() - before, 3);
    });

    test('repeated rate limits double the pause, up to the interval', async () => {
      await connect();
      now += HOUR + 1;
      const health = monitor({ rateLimitBackoffMs: 60_000 });
      gitlab.injectRateLimit({ count: 3, retryAfterSeconds: 61 });
      assert.equal((await health.tick()).deferred, 1);
      now += 61_000;
      assert.equal((await health.tick()).deferred, 1, 'second 429: paused 2 min');
      now += 61_000;
      assert.equal((await health.tick()).deferred, 1, 'still paused');
      now += 60_000;
      assert.equal((await health.tick()).deferred, 1, 'third 429: paused 4 min');
      now += 4 * 60_000;
      assert.equal((await health.tick()).checked, 1);
    });
  });
}

/**
 * The connection service over one storage handle, as each forgelink process has its own: the monitor's checks go
 * through it. `vault` is shared, as processes share the master key.
 */
function checkerOver(storage: Storage, vault: Vault, clock: Clock) {
  const policy = { allow: ['127.0.0.0/8'] };
  const transport = { sleep: async () => {} };
  const oauth = createGitLabOAuthClients({ apps: [], publicUrl: TEST_PUBLIC_URL, scopes: ['api'], policy, clock });
  const service = createConnectionService({
    store: storage.connections,
    vault,
    gitlab: gitlabClientFactory(policy, transport),
    probe: createGitLabProbe(policy, transport),
    clock,
    newId: () => newId('con'),
    allowHttp: false,
    tokens: createTokenProvider({ store: storage.connections, vault, oauth, clock }),
    oauth,
  });
  return { service, close: () => oauth.close() };
}

for (const db of databases()) {
  test(`two monitors on two storage handles of one ${db.name} database: one checks each connection once per interval, the other takes over when it stops`, async () => {
    const gitlab = await startFakeGitLab({ tls: true });
    const target = await db.createTarget();
    const handles = [await openStorage(target.options), await openStorage(target.options)];
    let now = Date.now();
    const clock = { now: () => new Date(now) };
    const vault = createVault({ keyring: { versions: [{ id: 'k1', key: randomBytes(32) }] } });
    const checkers = handles.map((storage) => checkerOver(storage, vault, clock));
    try {
      const botId = gitlab.addUser({ username: 'agent-bot' }).id;
      const owner = await handles[0]!.users.createUser(newUser());
      for (let index = 0; index < 3; index++) {
        const token = gitlab.addToken(botId, { scopes: ['read_repository', 'write_repository'], expiresAt: inDays(200, now) });
        await checkers[0]!.service.connect(owner.id, { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
      }
      const monitors = handles.map((storage, index) =>
        createHealthMonitor({
          store: storage.connections,
          check: (userId, id) => checkers[index]!.service.check(userId, id),
          events: storage.connectionEvents,
          leases: storage.leases,
          users: storage.users,
          notifier: null,
          clock,
          logger: silentLogger(),
          intervalMs: HOUR,
          jitterMs: 10 * 60_000,
          holder: `process-${index + 1}`,
        }),
      );
      const connected = gitlab.requests.length;
      const tokenChecks = () => gitlab.requests.slice(connected).filter((request) => request.path === '/api/v4/personal_access_tokens/self').length;

      // Past the interval and the largest jitter: every connection is due. Both wake at once, twice.
      now += HOUR + 10 * 60_000;
      const first = await Promise.all(monitors.map((monitor) => monitor.tick()));
      const second = await Promise.all(monitors.map((monitor) => monitor.tick()));
      assert.deepEqual(first.map((report) => report.leader).sort(), [false, true]);
      assert.deepEqual(
        [...first, ...second].map((report) => report.checked).reduce((sum, checked) => sum + checked, 0),
        3,
        'three connections, three checks',
      );
      assert.equal(tokenChecks(), 3);
      const leader = first[0]!.leader ? 0 : 1;
      assert.equal(second[leader]!.leader, true, 'the holder keeps its lease');

      // The holder stops (a deploy, a shutdown): it gives the lease up and the other process carries on.
      await monitors[leader]!.stop();
      const standby = monitors[1 - leader]!;
      assert.deepEqual(await standby.tick(), { leader: true, checked: 0, changed: 0, deferred: 0, notified: 0 }, 'nothing due yet');
      now += HOUR + 10 * 60_000;
      assert.equal((await standby.tick()).checked, 3);
      assert.equal(tokenChecks(), 6);
      await standby.stop();
    } finally {
      for (const checker of checkers) await checker.close();
      for (const storage of handles) await storage.close();
      await target.dispose();
      await gitlab.close();
    }
  });
}
