import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from './index.ts';
import { clientFor } from './test-support.ts';

const ROTATE = '/api/v4/personal_access_tokens/self/rotate';
const SELF = '/api/v4/personal_access_tokens/self';
const REVOKED = 'Token was revoked. You have to re-authorize from the user.';
const EXPIRED = 'Token is expired. You can either do re-authorization or token refresh.';

function daysFromToday(days: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + days * 86_400_000).toISOString().slice(0, 10);
}

describe('fake GitLab: POST /personal_access_tokens/self/rotate', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let userId: number;

  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    client = clientFor(gl);
    userId = gl.addUser({ username: 'bot', name: 'Bot' }).id;
  });
  after(async () => {
    await client.close();
    await gl.close();
  });

  const rotate = (token: string, body: unknown = {}) => client.post(ROTATE, body, { 'PRIVATE-TOKEN': token });
  const selfStatus = async (token: string) => {
    const response = await client.get(SELF, { 'PRIVATE-TOKEN': token });
    await response.arrayBuffer();
    return response.status;
  };

  test('revokes the token and answers 200 with its successor: same name and scopes, linked into one family', async () => {
    const old = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(3), name: 'agent', description: 'for runs' });
    const before = gl.rotationCount();
    const response = await rotate(old, { expires_at: daysFromToday(30) });
    assert.equal(response.status, 200);
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), [
      'active', 'created_at', 'description', 'expires_at', 'id', 'last_used_at', 'name', 'revoked', 'scopes', 'token', 'user_id',
    ]);
    assert.match(String(body.token), /^glpat-[A-Za-z0-9_-]{20}$/);
    assert.equal(body.name, 'agent');
    assert.equal(body.description, 'for runs');
    assert.deepEqual(body.scopes, ['api']);
    assert.equal(body.expires_at, daysFromToday(30));
    assert.equal(body.active, true);
    assert.equal(body.revoked, false);
    assert.equal(body.user_id, userId);
    assert.equal(gl.rotationCount(), before + 1);

    const fresh = String(body.token);
    assert.equal(await selfStatus(fresh), 200, 'the new token works');
    const refused = await client.get(SELF, { 'PRIVATE-TOKEN': old });
    assert.equal(refused.status, 401, 'the old one is revoked');
    assert.equal(((await refused.json()) as { error_description: string }).error_description, REVOKED);

    const family = gl.tokenFamily(fresh);
    assert.deepEqual(family.map((t) => t.token), [old, fresh]);
    assert.equal(family[1]?.previousTokenId, family[0]?.id);
    assert.deepEqual(gl.tokenFamily(old).map((t) => t.id), family.map((t) => t.id));
  });

  test('without expires_at the new token lives one week (RotateService::EXPIRATION_PERIOD)', async () => {
    const old = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(2) });
    const response = await client.post(ROTATE, '', { 'PRIVATE-TOKEN': old });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { expires_at: string }).expires_at, daysFromToday(7));
  });

  test('self_rotate alone is enough; a token with neither api nor self_rotate gets 403 and stays as it was', async () => {
    const narrow = gl.addToken(userId, { scopes: ['read_repository', 'write_repository', 'self_rotate'], expiresAt: daysFromToday(5) });
    const rotated = await rotate(narrow, { expires_at: daysFromToday(20) });
    assert.equal(rotated.status, 200);
    assert.deepEqual(((await rotated.json()) as { scopes: string[] }).scopes, ['read_repository', 'write_repository', 'self_rotate']);

    const readOnly = gl.addToken(userId, { scopes: ['read_api', 'read_user'], expiresAt: daysFromToday(5) });
    const before = gl.rotationCount();
    const refused = await rotate(readOnly);
    assert.equal(refused.status, 403);
    assert.deepEqual(await refused.json(), {
      error: 'insufficient_scope',
      error_description: 'The request requires higher privileges than provided by the access token.',
      scope: 'api self_rotate',
    });
    assert.equal(gl.rotationCount(), before);
    assert.equal(await selfStatus(readOnly), 200, 'the refused token still works');
  });

  test('expires_at: at most 365 days ahead, in the future, a date; a refusal rotates nothing', async () => {
    const token = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(5) });
    const before = gl.rotationCount();
    for (const [value, expected] of [
      [daysFromToday(366), { message: `400 Bad request - Expires at must be before ${daysFromToday(365)}` }],
      [daysFromToday(0), { message: '400 Bad request - Expires at must be in the future' }],
      ['2020-01-01', { message: '400 Bad request - Expires at must be in the future' }],
      ['next week', { error: 'expires_at is invalid' }],
      ['2030-02-30', { error: 'expires_at is invalid' }],
    ] as const) {
      const response = await rotate(token, { expires_at: value });
      assert.equal(response.status, 400, value);
      assert.deepEqual(await response.json(), expected, value);
    }
    assert.equal(gl.rotationCount(), before);
    assert.equal(await selfStatus(token), 200);

    const longest = await rotate(token, { expires_at: daysFromToday(365) });
    assert.equal(longest.status, 200, 'exactly the maximum is allowed');
  });

  test('an expired token gets 401 "expired" and no reuse detection; an unknown one 401 Unauthorized', async () => {
    const old = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(5) });
    const child = (await (await rotate(old, { expires_at: daysFromToday(10) })).json()) as { token: string };
    gl.expireToken(old);
    const stats = gl.tokenStats();
    const response = await rotate(old);
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { error_description: string }).error_description, EXPIRED);
    assert.deepEqual(gl.tokenStats(), stats, 'expiry is checked before revocation: no family revocation');
    assert.equal(await selfStatus(child.token), 200);

    const unknown = await rotate('glpat-xxxxxxxxxxxxxxxxxxxx');
    assert.equal(unknown.status, 401);
    assert.deepEqual(await unknown.json(), { message: '401 Unauthorized' });
  });

  test('reuse detection: rotating a revoked token revokes every token rotated from it, and answers 401', async () => {
    const first = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(5) });
    const second = ((await (await rotate(first, { expires_at: daysFromToday(10) })).json()) as { token: string }).token;
    const third = ((await (await rotate(second, { expires_at: daysFromToday(20) })).json()) as { token: string }).token;
    const unrelated = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(5) });
    assert.equal(await selfStatus(third), 200);
    const { rotations, familyRevocations } = gl.tokenStats();

    const reused = await rotate(first);
    assert.equal(reused.status, 401);
    assert.equal(((await reused.json()) as { error_description: string }).error_description, REVOKED);
    assert.deepEqual(gl.tokenStats(), { rotations, familyRevocations: familyRevocations + 1 });
    assert.equal(await selfStatus(third), 401, 'the newest token of the family is revoked too');
    assert.deepEqual(gl.tokenFamily(third).map((t) => [t.token, t.revoked]), [[first, true], [second, true], [third, true]]);
    assert.equal(await selfStatus(unrelated), 200, 'other families are untouched');
  });

  test('revoking on demand: a revoked token cannot rotate and its family goes with it', async () => {
    const first = gl.addToken(userId, { scopes: ['self_rotate', 'read_repository'], expiresAt: daysFromToday(5) });
    const second = ((await (await rotate(first, { expires_at: daysFromToday(10) })).json()) as { token: string }).token;
    gl.revokeToken(second);
    const refused = await rotate(second);
    assert.equal(refused.status, 401);
    await refused.arrayBuffer();
    assert.equal(gl.tokenFamily(first).every((t) => t.revoked), true);
  });

  test('setTokenExpiry moves a token\'s expiry date', async () => {
    const token = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(100) });
    gl.setTokenExpiry(token, daysFromToday(2));
    assert.equal(gl.tokenInfo(token).expiresAt, daysFromToday(2));
    assert.throws(() => gl.setTokenExpiry(token, 'soon'));
  });

  test('a lost answer: GitLab rotated (old revoked, successor active) but the client got a 502', async () => {
    const old = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(5) });
    const before = gl.rotationCount();
    gl.injectRotationAnswerLoss(1);
    const response = await rotate(old, { expires_at: daysFromToday(30) });
    assert.equal(response.status, 502);
    assert.match(await response.text(), /502 Bad Gateway/);
    assert.equal(gl.rotationCount(), before + 1);
    const [oldRecord, successor] = gl.tokenFamily(old);
    assert.equal(oldRecord?.revoked, true);
    assert.equal(successor?.revoked, false);
    assert.equal(successor?.expiresAt, daysFromToday(30));

    const next = gl.addToken(userId, { scopes: ['api'], expiresAt: daysFromToday(5) });
    assert.equal((await rotate(next)).status, 200, 'only the injected count is lost');
  });
});
