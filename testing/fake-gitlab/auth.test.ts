import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from './index.ts';
import { clientFor } from './test-support.ts';

const EXPIRED =
  'Token is expired. You can either do re-authorization or token refresh.';
const REVOKED = 'Token was revoked. You have to re-authorize from the user.';
const INSUFFICIENT = 'The request requires higher privileges than provided by the access token.';

describe('fake GitLab authentication and scopes', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let userId: number;
  const token = (scopes: string[], extra: { expiresAt?: string | null; revoked?: boolean } = {}) =>
    gl.addToken(userId, { scopes, ...extra });

  before(async () => {
    gl = await startFakeGitLab({ basePath: '/gitlab' });
    client = clientFor(gl);
    userId = gl.addUser({ username: 'alice', name: 'Alice Liddell' }).id;
  });
  after(async () => {
    await client.close();
    await gl.close();
  });

  test('a token is glpat- and 20 URL-safe characters', () => {
    assert.match(token(['api']), /^glpat-[A-Za-z0-9_-]{20}$/);
  });

  test('/personal_access_tokens/self answers any scope with GitLab fields', async () => {
    const value = gl.addToken(userId, {
      scopes: ['read_repository', 'write_repository'],
      expiresAt: '2099-01-31',
      name: 'agent',
    });
    const response = await client.get('/api/v4/personal_access_tokens/self', { 'PRIVATE-TOKEN': value });
    assert.equal(response.status, 200);
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), [
      'active', 'created_at', 'description', 'expires_at', 'id', 'last_used_at', 'name', 'revoked', 'scopes', 'user_id',
    ]);
    assert.equal(body.name, 'agent');
    assert.deepEqual(body.scopes, ['read_repository', 'write_repository']);
    assert.equal(body.expires_at, '2099-01-31');
    assert.equal(body.user_id, userId);
    assert.equal(body.active, true);
    assert.equal(body.revoked, false);
    assert.match(String(body.last_used_at), /^\d{4}-\d\d-\d\dT/);
  });

  test('tokens are accepted from PRIVATE-TOKEN, Authorization: Bearer and private_token', async () => {
    const value = token(['read_user']);
    for (const [path, headers] of [
      ['/api/v4/user', { 'PRIVATE-TOKEN': value }],
      ['/api/v4/user', { Authorization: `Bearer ${value}` }],
      [`/api/v4/user?private_token=${value}`, {}],
    ] as const) {
      const response = await client.get(path, headers);
      assert.equal(response.status, 200, JSON.stringify(headers));
      const body = (await response.json()) as Record<string, unknown>;
      assert.equal(body.username, 'alice');
      assert.equal(body.name, 'Alice Liddell');
      assert.equal(body.state, 'active');
      assert.equal(body.web_url, `${gl.baseUrl}/alice`);
      assert.equal(body.email, 'alice@example.com');
    }
  });

  test('no token and an unknown token get 401 {"message":"401 Unauthorized"}', async () => {
    const variants: Array<Record<string, string>> = [
      {},
      { 'PRIVATE-TOKEN': 'glpat-unknownunknownunkn' },
      { Authorization: 'Bearer nope' },
    ];
    for (const headers of variants) {
      for (const path of ['/api/v4/user', '/api/v4/personal_access_tokens/self']) {
        const response = await client.get(path, headers);
        assert.equal(response.status, 401);
        assert.equal(await response.text(), '{"message":"401 Unauthorized"}');
        assert.equal(response.headers.get('www-authenticate'), null);
      }
    }
  });

  for (const [kind, description] of [['expired', EXPIRED], ['revoked', REVOKED]] as const) {
    test(`${kind} token gets 401 invalid_token everywhere, /personal_access_tokens/self included`, async () => {
      const value = token(['api']);
      if (kind === 'expired') gl.expireToken(value);
      else gl.revokeToken(value);
      for (const path of ['/api/v4/user', '/api/v4/projects', '/api/v4/personal_access_tokens/self']) {
        const response = await client.get(path, { 'PRIVATE-TOKEN': value });
        assert.equal(response.status, 401, path);
        assert.equal(
          response.headers.get('www-authenticate'),
          `Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="${description}"`,
        );
        assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
        assert.equal(await response.text(), JSON.stringify({ error: 'invalid_token', error_description: description }));
      }
    });
  }

  test('a token whose expires_at is today is already expired; tomorrow is not', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const expired = await client.get('/api/v4/user', { 'PRIVATE-TOKEN': token(['api'], { expiresAt: today }) });
    assert.equal(expired.status, 401);
    const fine = await client.get('/api/v4/user', { 'PRIVATE-TOKEN': token(['api'], { expiresAt: tomorrow }) });
    assert.equal(fine.status, 200);
  });

  test('a token created revoked is refused', async () => {
    const response = await client.get('/api/v4/user', { 'PRIVATE-TOKEN': token(['api'], { revoked: true }) });
    assert.equal(response.status, 401);
  });

  const scopeTable: Array<[string, string[], number, string?]> = [
    ['/api/v4/user', ['api'], 200],
    ['/api/v4/user', ['read_api'], 200],
    ['/api/v4/user', ['read_user'], 200],
    ['/api/v4/user', ['read_repository', 'write_repository'], 403, 'read_user api read_api'],
    ['/api/v4/metadata', ['read_user'], 200],
    ['/api/v4/metadata', ['write_repository'], 403, 'read_user api read_api'],
    ['/api/v4/version', ['read_api'], 200],
    ['/api/v4/projects', ['api'], 200],
    ['/api/v4/projects', ['read_api'], 200],
    ['/api/v4/projects', ['read_user'], 403, 'api read_api'],
    ['/api/v4/projects', ['read_repository', 'write_repository'], 403, 'api read_api'],
    ['/api/v4/personal_access_tokens/self', ['self_rotate'], 200],
  ];
  for (const [path, scopes, status, accepted] of scopeTable) {
    test(`${path} with ${scopes.join('+')} answers ${status}`, async () => {
      const response = await client.get(path, { 'PRIVATE-TOKEN': token(scopes) });
      assert.equal(response.status, status);
      if (status !== 403) return;
      // rack-oauth2's Bearer::Forbidden sends no WWW-Authenticate (see lib/api/api_guard.rb's FIXME).
      assert.equal(response.headers.get('www-authenticate'), null);
      assert.equal(
        await response.text(),
        JSON.stringify({ error: 'insufficient_scope', error_description: INSUFFICIENT, scope: accepted }),
      );
    });
  }

  test('/metadata and /version report the version', async () => {
    const value = token(['read_user']);
    const metadata = (await (await client.get('/api/v4/metadata', { 'PRIVATE-TOKEN': value })).json()) as Record<string, unknown>;
    assert.equal(metadata.version, '18.1.1-ee');
    assert.equal(metadata.enterprise, true);
    assert.equal(typeof metadata.revision, 'string');
    assert.equal(typeof metadata.kas, 'object');
    const version = (await (await client.get('/api/v4/version', { 'PRIVATE-TOKEN': value })).json()) as Record<string, unknown>;
    assert.deepEqual(version, { version: '18.1.1-ee', revision: metadata.revision });
  });

  test('requests are recorded below the base path, with whether they were authorized', async () => {
    const before = gl.requests.length;
    const value = token(['api']);
    await (await client.get('/api/v4/projects?per_page=5', { 'PRIVATE-TOKEN': value })).text();
    await (await client.get('/api/v4/user', { 'PRIVATE-TOKEN': 'glpat-nope' })).text();
    assert.deepEqual(gl.requests.slice(before), [
      { method: 'GET', path: '/api/v4/projects', query: { per_page: '5' }, authorized: true },
      { method: 'GET', path: '/api/v4/user', query: {}, authorized: false },
    ]);
  });

  test('each fake has its own state', async () => {
    const other = await startFakeGitLab();
    try {
      const otherClient = clientFor(other);
      const response = await otherClient.get('/api/v4/user', { 'PRIVATE-TOKEN': token(['api']) });
      assert.equal(response.status, 401);
      await response.text();
      await otherClient.close();
      assert.equal(other.addUser({ username: 'alice' }).id, 1);
    } finally {
      await other.close();
    }
  });
});
