import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { bindingForSecret } from '../../src/vault/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { EXAMPLES_DIR, startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { newRun } from '../storage/run-records.ts';

const AGENT = ['python3', path.join(EXAMPLES_DIR, 'scripted-agent.py')];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SETTLE_MS = 60_000;
/** forgelink's clock: the wall clock, moved forward when a test needs time to have passed. */
let clockOffsetMs = 0;
const clock = { now: () => new Date(Date.now() + clockOffsetMs) };

function daysFromToday(days: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + days * 86_400_000).toISOString().slice(0, 10);
}

describe('personal access token rotation end to end (fake GitLab over HTTPS under a subpath)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let botId: number;
  let projectId: number;
  let dispatcher: Agent;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'rotating-bot', name: 'Rotating Bot' }).id;
    projectId = gitlab.addProject({ path: 'acme/rotating', members: [{ userId: botId, accessLevel: 30 }] }).id;
    // A short request time, so callers do not wait long for a rotation in flight; the settle time passes by moving
    // the clock (the test of a lost answer), never by waiting for it.
    forgelink = await startForgelink({ clock, rotation: { requestMs: 200, settleMs: SETTLE_MS, waitMs: 5_000 } });
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
    dispatcher = new Agent({ connect: { ca: gitlab.caPem ?? undefined } });
  });
  after(async () => {
    await dispatcher.close();
    await forgelink.close();
    await gitlab.close();
  });

  async function connect(scopes: string[], expiresInDays: number): Promise<{ id: string; token: string }> {
    const token = gitlab.addToken(botId, { scopes, expiresAt: daysFromToday(expiresInDays), name: 'forgelink agent' });
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(response.status, 201, response.text);
    return { id: response.json.id, token };
  }

  async function optIn(id: string, rotation: Record<string, unknown> = { enabled: true, lifetimeDays: 30, thresholdDays: 7 }) {
    const response = await forgelink.call(alice, 'PATCH', `/api/v1/connections/${id}`, { rotation });
    assert.equal(response.status, 200, response.text);
    return response.json;
  }

  async function storedToken(id: string): Promise<string> {
    const secret = await forgelink.storage.connections.getSecret(alice.id, id, 'token');
    assert.ok(secret);
    return forgelink.vault.open(secret.sealed, bindingForSecret(secret));
  }

  async function works(token: string): Promise<boolean> {
    const response = await fetch(`${gitlab.baseUrl}/api/v4/personal_access_tokens/self`, { headers: { 'private-token': token }, dispatcher });
    await response.arrayBuffer();
    return response.status === 200;
  }

  async function finished(id: string): Promise<any> {
    for (;;) {
      const current = await forgelink.call(alice, 'GET', `/api/v1/runs/${id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await sleep(100);
    }
  }

  test('opted in and due: the first run rotates once before the token enters the sandbox; the new token works, the old one is revoked', async () => {
    const { id, token: old } = await connect(['api'], 3);
    const shown = await optIn(id);
    assert.deepEqual(shown.rotation, { enabled: true, lifetimeDays: 30, thresholdDays: 7, lastRotatedAt: null });
    const rotations = gitlab.rotationCount();
    assert.equal(await storedToken(id), old, 'opting in rotates nothing by itself');

    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: id, project: 'acme/rotating', command: AGENT });
    assert.equal(started.status, 201, started.text);
    const run = await finished(started.json.id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.outputs.mergeRequests.length, 1, 'the agent worked with the new token');

    assert.equal(gitlab.rotationCount() - rotations, 1, 'exactly one rotation at GitLab');
    const fresh = await storedToken(id);
    assert.notEqual(fresh, old);
    assert.equal(await works(fresh), true);
    assert.equal(await works(old), false);
    assert.deepEqual(gitlab.tokenFamily(fresh).map((t) => [t.token, t.revoked]), [[old, true], [fresh, false]]);

    const view = (await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`)).json;
    assert.equal(view.expiresAt, daysFromToday(30));
    assert.equal(view.status, 'active');
    assert.match(view.rotation.lastRotatedAt, /^\d{4}-\d\d-\d\dT/);
    assert.ok(!view.warnings.some((w: { code: string }) => w.code === 'expires_soon'));

    // Checks and further runs go on with the new token and rotate nothing more.
    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
    assert.equal(checked.status, 200, checked.text);
    assert.equal(checked.json.status, 'active');
    assert.equal(checked.json.expiresAt, daysFromToday(30));
    const second = await finished((await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: id, project: 'acme/rotating', command: ['git', 'status'] })).json.id);
    assert.equal(second.status, 'succeeded', JSON.stringify(second.error));
    assert.equal(gitlab.rotationCount() - rotations, 1);

    const entries = await forgelink.storage.audit.list({ ownerId: alice.id, connectionId: id });
    const rotated = entries.filter((entry) => entry.action === 'token.rotated');
    assert.equal(rotated.length, 1);
    assert.equal(rotated[0]?.actor, 'system');
    assert.deepEqual(rotated[0]?.details.expiresAt, daysFromToday(30));
    assert.equal(rotated[0]?.details.recovered, false);
    assert.deepEqual(await forgelink.storage.connections.listRotationIntents(), []);

    // No token in the run logs, the server log or the audit trail.
    const everything =
      JSON.stringify(await forgelink.storage.db.selectFrom('run_logs').select('text').execute()) +
      forgelink.logs.join('') +
      JSON.stringify(entries) +
      JSON.stringify(await forgelink.storage.db.selectFrom('token_rotations').selectAll().execute());
    for (const token of [old, fresh]) assert.ok(!everything.includes(token), 'a token leaked');
    assert.ok(gitlab.branches(projectId).length > 1);
  });

  test('a token not yet due is left alone; POST /rotate rotates it now with the configured lifetime', async () => {
    const { id, token: old } = await connect(['read_repository', 'write_repository', 'self_rotate'], 60);
    await optIn(id, { enabled: true, lifetimeDays: 90, thresholdDays: 14 });
    const rotations = gitlab.rotationCount();
    assert.equal((await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`)).json.expiresAt, daysFromToday(60));
    assert.equal(gitlab.rotationCount(), rotations);

    const rotated = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/rotate`);
    assert.equal(rotated.status, 200, rotated.text);
    assert.equal(rotated.json.expiresAt, daysFromToday(90));
    assert.deepEqual(rotated.json.scopes, ['read_repository', 'write_repository', 'self_rotate']);
    assert.equal(gitlab.rotationCount() - rotations, 1);
    assert.equal(await works(old), false);
    assert.equal(await works(await storedToken(id)), true);
    const entry = (await forgelink.storage.audit.list({ ownerId: alice.id, connectionId: id })).find((e) => e.action === 'token.rotated');
    assert.equal(entry?.actor, alice.id);
    assert.equal(entry?.reason, 'manual');
    assert.equal((await forgelink.call(bob, 'POST', `/api/v1/connections/${id}/rotate`)).status, 404, "another user's connection is not found");
  });

  test('opting in is refused, naming the field, for a token that cannot rotate itself and for bad numbers', async () => {
    const { id } = await connect(['read_repository', 'write_repository'], 3);
    const refused = await forgelink.call(alice, 'PATCH', `/api/v1/connections/${id}`, { rotation: { enabled: true } });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.field, 'rotation.enabled');
    assert.match(refused.json.error.message, /api or self_rotate/);
    // Turning it off is always allowed.
    assert.equal((await forgelink.call(alice, 'PATCH', `/api/v1/connections/${id}`, { rotation: { enabled: false } })).status, 200);
    const manual = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/rotate`);
    assert.equal(manual.status, 400);
    assert.equal(manual.json.error.code, 'rotation_unsupported');

    const { id: capable } = await connect(['api'], 100);
    for (const [rotation, field] of [
      [{ enabled: true, lifetimeDays: 400 }, 'rotation.lifetimeDays'],
      [{ enabled: true, lifetimeDays: 1 }, 'rotation.lifetimeDays'],
      [{ enabled: true, lifetimeDays: 10, thresholdDays: 10 }, 'rotation.thresholdDays'],
      [{ enabled: true, thresholdDays: 0 }, 'rotation.thresholdDays'],
      [{ enabled: true, lifetimeDays: 7.5 }, 'rotation.lifetimeDays'],
      [{ enabled: 'yes' }, 'rotation.enabled'],
    ] as const) {
      const response = await forgelink.call(alice, 'PATCH', `/api/v1/connections/${capable}`, { rotation });
      assert.equal(response.status, 400, JSON.stringify(rotation));
      assert.equal(response.json.error.field, field, JSON.stringify(rotation));
    }
    const unknownKey = await forgelink.call(alice, 'PATCH', `/api/v1/connections/${capable}`, { rotation: { enabled: true }, label: 'x' });
    assert.equal(unknownKey.status, 400);
    assert.equal((await forgelink.call(bob, 'PATCH', `/api/v1/connections/${capable}`, { rotation: { enabled: true } })).status, 404);
    // Defaults: 30 days, rotated at 7 or fewer left.
    assert.deepEqual((await optIn(capable, { enabled: true })).rotation, { enabled: true, lifetimeDays: 30, thresholdDays: 7, lastRotatedAt: null });
    assert.deepEqual((await optIn(capable, { enabled: false })).rotation, { enabled: false, lifetimeDays: 30, thresholdDays: 7, lastRotatedAt: null });
  });

  test('a due token is not rotated while a run uses it; a manual rotation then answers 409', async () => {
    const { id, token: old } = await connect(['api'], 2);
    await optIn(id);
    // A direct run: its sandbox holds the token itself (a brokered one would not).
    const busy = newRun(alice.id, { connectionId: id, status: 'running', credentials: 'direct' });
    await forgelink.storage.runs.createRun(busy);
    const rotations = gitlab.rotationCount();
    try {
      const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
      assert.equal(checked.json.status, 'active');
      assert.equal(gitlab.rotationCount(), rotations, 'deferred: the running agent keeps a working token');
      assert.equal(await storedToken(id), old);
      const manual = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/rotate`);
      assert.equal(manual.status, 409);
      assert.equal(manual.json.error.code, 'connection_in_use');
    } finally {
      await forgelink.storage.runs.updateRun(busy.id, { status: 'succeeded', finishedAt: new Date().toISOString() });
    }
    await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
    assert.equal(gitlab.rotationCount() - rotations, 1, 'rotated once the run finished');
  });

  test('a token rotated or revoked behind our back is never presented for rotation: the connection is marked revoked', async () => {
    const { id, token } = await connect(['api'], 2);
    await optIn(id);
    // As if the user had rotated it in GitLab's settings themselves: its successor is in use elsewhere.
    const theirs = ((await (await fetch(`${gitlab.baseUrl}/api/v4/personal_access_tokens/self/rotate`, { method: 'POST', headers: { 'private-token': token }, dispatcher })).json()) as { token: string }).token;
    const stats = gitlab.tokenStats();
    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
    assert.equal(checked.json.status, 'revoked');
    assert.deepEqual(gitlab.tokenStats(), stats, 'the revoked token never reached the rotate endpoint: no reuse detection');
    assert.equal(await works(theirs), true, "the user's own successor token still works");
    const again = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/rotate`);
    assert.equal(again.status, 409, 'a revoked token is never presented for rotation again');
    assert.equal(again.json.error.code, 'connection_unusable');
    assert.deepEqual(gitlab.tokenStats(), stats);
    assert.deepEqual(await forgelink.storage.connections.listRotationIntents(), []);
  });

  test('an answer lost on the way back: never retried with the old token; once settled, the connection is revoked with the reason and the successor stays active', async () => {
    const { id, token: old } = await connect(['api'], 2);
    await optIn(id);
    const stats = gitlab.tokenStats();
    gitlab.injectRotationAnswerLoss(1);
    const manual = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/rotate`);
    assert.equal(manual.status, 409);
    assert.equal(manual.json.error.code, 'rotation_outcome_unknown');
    assert.equal(gitlab.rotationCount() - stats.rotations, 1);
    assert.equal((await forgelink.storage.connections.listRotationIntents()).filter((i) => i.connectionId === id).length, 1);

    // Until GitLab can tell, callers keep the old token (waiting no longer than a request can last) and nobody rotates.
    const connection = (await forgelink.storage.connections.getConnection(alice.id, id))!;
    assert.equal((await forgelink.rotator.rotateIfDue(connection)).status, 'busy');
    assert.equal(await forgelink.tokens.currentToken(connection), old);
    assert.equal(gitlab.rotationCount() - stats.rotations, 1);

    clockOffsetMs += SETTLE_MS;
    const recovered = await forgelink.rotator.recoverPending();
    assert.deepEqual(recovered.filter((r) => r.connectionId === id), [{ connectionId: id, status: 'lost' }]);
    const view = (await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`)).json;
    assert.equal(view.status, 'revoked');
    assert.match(view.statusReason, /did not try again/);
    assert.deepEqual(gitlab.tokenStats(), { rotations: stats.rotations + 1, familyRevocations: stats.familyRevocations });
    const [, successor] = gitlab.tokenFamily(old);
    assert.equal(successor?.revoked, false, 'the successor GitLab issued was not revoked by a retry');
    assert.deepEqual(await forgelink.storage.connections.listRotationIntents(), []);
    assert.equal((await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/rotate`)).status, 409);
    assert.equal(gitlab.rotationCount() - stats.rotations, 1);
  });

  test('a token that was rotated while a caller held the old one: the caller retries once with the new token', async () => {
    const { id, token: old } = await connect(['api'], 50);
    const connection = (await forgelink.storage.connections.getConnection(alice.id, id))!;
    const seen: string[] = [];
    const user = await forgelink.tokens.withToken(connection, async (token) => {
      seen.push(token);
      if (seen.length === 1) {
        // Another caller rotates between this caller reading the token and GitLab refusing it.
        await forgelink.rotator.rotateNow(connection, { actor: alice.id, reason: 'manual' });
      }
      const response = await fetch(`${gitlab.baseUrl}/api/v4/user`, { headers: { 'private-token': token }, dispatcher });
      if (response.status === 401) {
        await response.arrayBuffer();
        const { UpstreamError } = await import('../../src/core/index.ts');
        throw new UpstreamError('token_revoked', 'revoked', { status: 401 });
      }
      return (await response.json()) as { id: number };
    });
    assert.equal(user.id, botId);
    assert.equal(seen.length, 2);
    assert.equal(seen[0], old);
    assert.equal(seen[1], await storedToken(id));
  });
});
