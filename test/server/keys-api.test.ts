import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

describe('API keys over the API', () => {
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let now = new Date('2030-05-01T10:00:00.000Z');
  /** Every key value the tests saw; none may appear in a list, an audit entry or a log line. */
  const values: string[] = [];

  before(async () => {
    forgelink = await startForgelink({ clock: { now: () => now } });
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
    values.push(alice.apiKey, bob.apiKey);
  });
  after(async () => {
    await forgelink.close();
  });

  async function create(user: TestUser, name: string): Promise<{ id: string; name: string; key: string; createdAt: string; as: TestUser }> {
    const response = await forgelink.call(user, 'POST', '/api/v1/keys', { name });
    assert.equal(response.status, 201, response.text);
    values.push(response.json.key);
    return { ...response.json, as: { id: user.id, name: user.name, apiKey: response.json.key } };
  }

  async function list(user: TestUser) {
    const response = await forgelink.call(user, 'GET', '/api/v1/keys');
    assert.equal(response.status, 200, response.text);
    return response;
  }

  test('a new key is shown once, works at once, and is listed by name and prefix only', async () => {
    const created = await create(alice, '  build server  ');
    assert.match(created.id, /^key_[0-9a-f]{20}$/);
    assert.equal(created.name, 'build server');
    assert.match(created.key, /^flk_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.createdAt, now.toISOString());
    assert.deepEqual(Object.keys(created).sort(), ['as', 'createdAt', 'id', 'key', 'name']);

    const me = await forgelink.call(created.as, 'GET', '/api/v1/me');
    assert.equal(me.status, 200);
    assert.equal(me.json.name, 'alice');

    const listed = await list(alice);
    const mine = listed.json.keys.find((key: { id: string }) => key.id === created.id);
    assert.deepEqual(mine, { id: created.id, name: 'build server', prefix: created.key.slice(0, 8), createdAt: now.toISOString(), lastUsedAt: now.toISOString() });
    assert.ok(listed.json.keys.some((key: { name: string }) => key.name === 'initial'));
    for (const value of values) assert.ok(!listed.text.includes(value));
  });

  test('names are 1–64 characters, without control characters, one per working key; errors name the field', async () => {
    for (const [body, status, code] of [
      [{}, 400, 'invalid_input'],
      [{ name: 7 }, 400, 'invalid_input'],
      [{ name: '' }, 400, 'invalid_name'],
      [{ name: '   ' }, 400, 'invalid_name'],
      [{ name: 'x'.repeat(65) }, 400, 'invalid_name'],
      [{ name: 'tab\there' }, 400, 'invalid_name'],
    ] as const) {
      const response = await forgelink.call(alice, 'POST', '/api/v1/keys', body);
      assert.equal(response.status, status, JSON.stringify(body));
      assert.equal(response.json.error.code, code, JSON.stringify(body));
      assert.equal(response.json.error.field, 'name', JSON.stringify(body));
    }
    const extra = await forgelink.call(alice, 'POST', '/api/v1/keys', { name: 'ok', scopes: ['all'] });
    assert.equal(extra.status, 400);
    assert.equal((await create(alice, 'x'.repeat(64))).name, 'x'.repeat(64));

    await create(alice, 'laptop');
    const again = await forgelink.call(alice, 'POST', '/api/v1/keys', { name: 'laptop' });
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'key_name_taken');
    assert.equal(again.json.error.field, 'name');
    // Names belong to their user: bob may have a "laptop" too.
    await create(bob, 'laptop');
  });

  test('a revoked key is refused on the very next request; its name is free again', async () => {
    const created = await create(alice, 'temporary');
    assert.equal((await forgelink.call(created.as, 'GET', '/api/v1/connections')).status, 200);
    const revoked = await forgelink.call(alice, 'DELETE', `/api/v1/keys/${created.id}`);
    assert.equal(revoked.status, 204);
    assert.equal(revoked.text, '');
    const refused = await forgelink.call(created.as, 'GET', '/api/v1/connections');
    assert.equal(refused.status, 401);
    assert.equal(refused.json.error.code, 'unauthenticated');
    assert.ok(!(await list(alice)).json.keys.some((key: { id: string }) => key.id === created.id));
    assert.equal((await forgelink.call(alice, 'DELETE', `/api/v1/keys/${created.id}`)).status, 404);
    await create(alice, 'temporary');
  });

  test('a key may revoke itself: the answer is 204, and it is refused afterwards', async () => {
    const created = await create(alice, 'self-destruct');
    assert.equal((await forgelink.call(created.as, 'DELETE', `/api/v1/keys/${created.id}`)).status, 204);
    assert.equal((await forgelink.call(created.as, 'GET', '/api/v1/me')).status, 401);
    assert.equal((await forgelink.call(alice, 'GET', '/api/v1/me')).status, 200);
  });

  test("another user's key is 404, untouched and unlisted", async () => {
    const created = await create(alice, 'private');
    const response = await forgelink.call(bob, 'DELETE', `/api/v1/keys/${created.id}`);
    assert.equal(response.status, 404);
    assert.equal(response.json.error.code, 'key_not_found');
    assert.equal((await forgelink.call(bob, 'DELETE', '/api/v1/keys/key_0000')).json.error.code, 'key_not_found');
    assert.equal((await forgelink.call(created.as, 'GET', '/api/v1/me')).status, 200);
    const bobs = await list(bob);
    assert.ok(!bobs.json.keys.some((key: { id: string }) => key.id === created.id));
    assert.ok(bobs.json.keys.every((key: { name: string }) => key.name !== 'private'));
  });

  test('the last use is recorded at most once a minute', async () => {
    const created = await create(alice, 'busy');
    const lastUsed = async () => (await list(alice)).json.keys.find((key: { id: string }) => key.id === created.id).lastUsedAt;
    assert.equal(await lastUsed(), null);
    const first = now;
    await forgelink.call(created.as, 'GET', '/api/v1/me');
    assert.equal(await lastUsed(), first.toISOString());
    now = new Date(first.getTime() + 59_000);
    await forgelink.call(created.as, 'GET', '/api/v1/me');
    assert.equal(await lastUsed(), first.toISOString());
    now = new Date(first.getTime() + 60_000);
    await forgelink.call(created.as, 'GET', '/api/v1/me');
    assert.equal(await lastUsed(), now.toISOString());
  });

  test('the audit log records each creation and revocation with the key id, never the key', async () => {
    const created = await create(alice, 'audited');
    // The audit log lists newest first: the revocation must come later by the clock.
    now = new Date(now.getTime() + 1000);
    await forgelink.call(created.as, 'DELETE', `/api/v1/keys/${created.id}`);
    const audit = await forgelink.call(alice, 'GET', '/api/v1/audit');
    const about = audit.json.entries.filter((entry: { details: { keyId?: string } }) => entry.details.keyId === created.id);
    assert.deepEqual(
      about.map((entry: { action: string; actor: string; ownerId: string; details: Record<string, unknown> }) => [entry.action, entry.actor, entry.ownerId, entry.details]),
      [
        ['api_key.revoked', alice.id, alice.id, { keyId: created.id, name: 'audited', prefix: created.key.slice(0, 8), via: 'api', usingKeyId: created.id }],
        ['api_key.created', alice.id, alice.id, { keyId: created.id, name: 'audited', prefix: created.key.slice(0, 8), via: 'api', usingKeyId: about[1]?.details.usingKeyId }],
      ],
    );
    assert.notEqual(about[1].details.usingKeyId, created.id);
    for (const value of values) assert.ok(!audit.text.includes(value));
    // Bob sees none of it.
    const bobs = await forgelink.call(bob, 'GET', '/api/v1/audit');
    assert.ok(!bobs.text.includes(created.id));
  });

  test('no key value reaches the log', () => {
    const log = forgelink.logs.join('');
    assert.ok(log.includes('/api/v1/keys'));
    for (const value of values) assert.ok(!log.includes(value), 'a key value was logged');
  });
});
