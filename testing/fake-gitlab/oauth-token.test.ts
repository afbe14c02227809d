import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab, type FakeOAuthApplication } from './index.ts';
import { browserFor, clientFor, pkcePair, type Browser } from './test-support.ts';

const REDIRECT = 'http://localhost:3000/integrations/gitlab/callback';
const INVALID_GRANT =
  'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.';
const INVALID_CLIENT =
  'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.';
const INVALID_REQUEST =
  'The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.';
const EXPIRED = 'Token is expired. You can either do re-authorization or token refresh.';
const REVOKED = 'Token was revoked. You have to re-authorize from the user.';

interface TokenBody {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  scope: string;
  created_at: number;
}

/** /oauth/token, /oauth/revoke and /oauth/token/info against the fake (plain HTTP, no subpath). */
describe('OAuth token endpoints of the fake', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let browser: Browser;
  let app: FakeOAuthApplication;
  let other: FakeOAuthApplication;
  let publicApp: FakeOAuthApplication;
  let userId: number;

  before(async () => {
    gl = await startFakeGitLab();
    client = clientFor(gl);
    browser = browserFor(gl);
    userId = gl.addUser({ username: 'bob' }).id;
    app = gl.addOAuthApplication({ redirectUri: REDIRECT, scopes: ['api', 'read_user'] });
    other = gl.addOAuthApplication({ name: 'other', redirectUri: REDIRECT, scopes: ['api', 'read_user'] });
    publicApp = gl.addOAuthApplication({ name: 'public', redirectUri: REDIRECT, scopes: ['api', 'read_user'], confidential: false });
    gl.oauthAutoApprove(userId);
  });
  after(async () => {
    await browser.close();
    await client.close();
    await gl.close();
  });

  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const post = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    client.post(path, form(fields), { 'Content-Type': 'application/x-www-form-urlencoded', ...headers });
  const secretOf = (target: FakeOAuthApplication): Record<string, string> => (target.confidential ? { client_secret: target.clientSecret } : {});

  /** A code from the auto-approved authorize endpoint. */
  async function codeFor(target: FakeOAuthApplication, options: { challenge?: string; scope?: string } = {}): Promise<string> {
    const query = new URLSearchParams({ client_id: target.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: options.scope ?? 'api' });
    if (options.challenge) {
      query.set('code_challenge', options.challenge);
      query.set('code_challenge_method', 'S256');
    }
    const response = await browser.get(`${gl.baseUrl}/oauth/authorize?${query}`);
    assert.equal(response.status, 302, await response.text());
    return new URL(response.headers.get('location') ?? '').searchParams.get('code') ?? '';
  }

  function exchange(target: FakeOAuthApplication, code: string, extra: Record<string, string> = {}) {
    return post('/oauth/token', {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      client_id: target.clientId,
      ...secretOf(target),
      ...extra,
    });
  }

  async function tokens(target: FakeOAuthApplication = app, scope = 'api'): Promise<TokenBody> {
    const { verifier, challenge } = pkcePair();
    const response = await exchange(target, await codeFor(target, { challenge, scope }), { code_verifier: verifier });
    assert.equal(response.status, 200);
    return (await response.json()) as TokenBody;
  }

  function refresh(refreshToken: string, target: FakeOAuthApplication = app, extra: Record<string, string> = {}) {
    return post('/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: target.clientId, ...secretOf(target), ...extra });
  }

  async function assertOAuthError(response: Awaited<ReturnType<typeof post>>, status: number, error: string, description: string) {
    assert.equal(response.status, status);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(response.headers.get('www-authenticate'), `Bearer realm="Doorkeeper", error="${error}", error_description="${description}"`);
    assert.equal(await response.text(), JSON.stringify({ error, error_description: description }));
  }

  /**
   * GitLab's Oauth::TokenInfoController renders Doorkeeper::OAuth::InvalidTokenResponse.new for every token it
   * cannot show (spec/controllers/oauth/token_info_controller_spec.rb: 401, `invalid_token`).
   */
  async function assertInvalidToken(response: Awaited<ReturnType<typeof post>>) {
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('cache-control'), 'no-store, no-cache');
    assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="Doorkeeper", error="invalid_token", error_description="The access token is invalid"');
    assert.deepEqual(await response.json(), { error: 'invalid_token', error_description: 'The access token is invalid', state: 'unauthorized' });
  }

  const userStatus = async (accessToken: string) => {
    const response = await client.get('/api/v4/user', { Authorization: `Bearer ${accessToken}` });
    await response.text();
    return response.status;
  };

  test('a wrong code_verifier is invalid_grant and leaves the code usable; a missing one is invalid_request', async () => {
    const { verifier, challenge } = pkcePair();
    const code = await codeFor(app, { challenge });
    await assertOAuthError(await exchange(app, code, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant', INVALID_GRANT);
    await assertOAuthError(await exchange(app, code), 400, 'invalid_request', INVALID_REQUEST);
    assert.equal((await exchange(app, code, { code_verifier: verifier })).status, 200);
  });

  test('a code_verifier for a code issued without PKCE is invalid_grant', async () => {
    const code = await codeFor(app);
    await assertOAuthError(await exchange(app, code, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant', INVALID_GRANT);
    assert.equal((await exchange(app, code)).status, 200);
  });

  test('a code is single-use: the second exchange is invalid_grant, the first token keeps working', async () => {
    const code = await codeFor(app);
    const first = (await (await exchange(app, code)).json()) as TokenBody;
    await assertOAuthError(await exchange(app, code), 400, 'invalid_grant', INVALID_GRANT);
    assert.equal(await userStatus(first.access_token), 200);
  });

  test('the redirect_uri must match the authorization request; a missing one is invalid_request', async () => {
    const code = await codeFor(app);
    await assertOAuthError(await exchange(app, code, { redirect_uri: 'http://localhost:3000/other' }), 400, 'invalid_grant', INVALID_GRANT);
    const withoutRedirect = { grant_type: 'authorization_code', code, client_id: app.clientId, client_secret: app.clientSecret };
    await assertOAuthError(await post('/oauth/token', withoutRedirect), 400, 'invalid_request', INVALID_REQUEST);
    assert.equal((await exchange(app, code)).status, 200);
  });

  test('client authentication: wrong or missing secret is 401 invalid_client; another client\'s code is invalid_grant', async () => {
    const code = await codeFor(app);
    await assertOAuthError(await exchange(app, code, { client_secret: 'gloas-wrong' }), 401, 'invalid_client', INVALID_CLIENT);
    const noSecret = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: app.clientId };
    await assertOAuthError(await post('/oauth/token', noSecret), 401, 'invalid_client', INVALID_CLIENT);
    await assertOAuthError(await exchange(other, code), 400, 'invalid_grant', INVALID_GRANT);
    // HTTP Basic works as well as the body, and so does JSON.
    const basic = `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`;
    const viaBasic = await post('/oauth/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, { Authorization: basic });
    assert.equal(viaBasic.status, 200);
    const json = await client.post('/oauth/token', {
      grant_type: 'authorization_code',
      code: await codeFor(app),
      redirect_uri: REDIRECT,
      client_id: app.clientId,
      client_secret: app.clientSecret,
    });
    assert.equal(json.status, 200);
    await json.text();
  });

  test('grant types: a missing one is invalid_request, an unknown one unsupported_grant_type', async () => {
    await assertOAuthError(await post('/oauth/token', { client_id: app.clientId }), 400, 'invalid_request', INVALID_REQUEST);
    await assertOAuthError(
      await post('/oauth/token', { grant_type: 'implicit', client_id: app.clientId }),
      400,
      'unsupported_grant_type',
      'The authorization grant type is not supported by the authorization server.',
    );
  });

  test('refresh rotates the pair: the old access token is revoked, the old refresh token is invalid_grant', async () => {
    const before = gl.oauthStats().refreshes;
    const old = await tokens();
    const response = await refresh(old.refresh_token);
    assert.equal(response.status, 200);
    const renewed = (await response.json()) as TokenBody;
    assert.notEqual(renewed.access_token, old.access_token);
    assert.notEqual(renewed.refresh_token, old.refresh_token);
    assert.equal(renewed.scope, 'api');
    assert.equal(await userStatus(renewed.access_token), 200);

    const stale = await client.get('/api/v4/user', { Authorization: `Bearer ${old.access_token}` });
    assert.equal(stale.status, 401);
    assert.deepEqual(await stale.json(), { error: 'invalid_token', error_description: REVOKED });
    await assertOAuthError(await refresh(old.refresh_token), 400, 'invalid_grant', INVALID_GRANT);
    assert.equal(gl.oauthStats().refreshes, before + 1);
  });

  test('refresh needs the token\'s own client; it may narrow the scopes, not widen them', async () => {
    const old = await tokens(app, 'api read_user');
    const anonymous = { grant_type: 'refresh_token', refresh_token: old.refresh_token };
    await assertOAuthError(await post('/oauth/token', anonymous), 400, 'invalid_grant', INVALID_GRANT);
    await assertOAuthError(await refresh(old.refresh_token, other), 400, 'invalid_grant', INVALID_GRANT);
    await assertOAuthError(await refresh(old.refresh_token, app, { client_secret: 'gloas-wrong' }), 401, 'invalid_client', INVALID_CLIENT);
    await assertOAuthError(
      await refresh(old.refresh_token, app, { scope: 'api sudo' }),
      400,
      'invalid_scope',
      'The requested scope is invalid, unknown, or malformed.',
    );
    const narrowed = await refresh(old.refresh_token, app, { scope: 'read_user' });
    assert.equal(((await narrowed.json()) as TokenBody).scope, 'read_user');
    // A public application refreshes with its client id alone.
    const publicTokens = await tokens(publicApp);
    assert.equal((await refresh(publicTokens.refresh_token, publicApp)).status, 200);
  });

  test("'on-first-use': the old pair works until the new access token is used, as Doorkeeper does", async () => {
    gl.setOAuthRefreshRevocation('on-first-use');
    try {
      const old = await tokens();
      const renewed = (await (await refresh(old.refresh_token)).json()) as TokenBody;
      assert.equal(await userStatus(old.access_token), 200);
      assert.equal(await userStatus(renewed.access_token), 200);
      assert.equal(await userStatus(old.access_token), 401);
      await assertOAuthError(await refresh(old.refresh_token), 400, 'invalid_grant', INVALID_GRANT);
    } finally {
      gl.setOAuthRefreshRevocation('immediately');
    }
  });

  test('a token with a 2-second lifetime expires; its refresh token still works', async () => {
    gl.setOAuthTokenLifetime(2);
    try {
      const short = await tokens();
      assert.equal(short.expires_in, 2);
      assert.equal(await userStatus(short.access_token), 200);
      // The wall clock, not a test hook, ends it: wait (30 s at most) until the fake refuses it.
      const deadline = Date.now() + 30_000;
      while ((await userStatus(short.access_token)) === 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const expired = await client.get('/api/v4/user', { Authorization: `Bearer ${short.access_token}` });
      assert.equal(expired.status, 401);
      assert.equal(
        expired.headers.get('www-authenticate'),
        `Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="${EXPIRED}"`,
      );
      assert.deepEqual(await expired.json(), { error: 'invalid_token', error_description: EXPIRED });
      await assertInvalidToken(await client.get(`/oauth/token/info?access_token=${short.access_token}`));
      const renewed = await refresh(short.refresh_token);
      assert.equal(renewed.status, 200);
      assert.equal(((await renewed.json()) as TokenBody).expires_in, 2);
    } finally {
      gl.setOAuthTokenLifetime(7200);
    }
  });

  test('revoke: 200 {} and the pair stops working, by access or refresh token; unknown tokens are fine', async () => {
    const before = gl.oauthStats().revocations;
    const byAccess = await tokens();
    const revoked = await post('/oauth/revoke', { token: byAccess.access_token, client_id: app.clientId, client_secret: app.clientSecret });
    assert.equal(revoked.status, 200);
    assert.equal(await revoked.text(), '{}');
    assert.equal(await userStatus(byAccess.access_token), 401);
    await assertOAuthError(await refresh(byAccess.refresh_token), 400, 'invalid_grant', INVALID_GRANT);

    const byRefresh = await tokens();
    const hinted = await post('/oauth/revoke', {
      token: byRefresh.refresh_token,
      token_type_hint: 'refresh_token',
      client_id: app.clientId,
      client_secret: app.clientSecret,
    });
    assert.equal(hinted.status, 200);
    await hinted.text();
    assert.equal(await userStatus(byRefresh.access_token), 401);

    const unknown = await post('/oauth/revoke', { token: 'nope', client_id: app.clientId, client_secret: app.clientSecret });
    assert.equal(unknown.status, 200);
    assert.equal(await unknown.text(), '{}');
    assert.equal(gl.oauthStats().revocations, before + 2);
  });

  test("revoke: a confidential application's token needs that application's credentials (403 otherwise)", async () => {
    const pair = await tokens();
    const attempts: Array<Record<string, string>> = [{}, { client_id: other.clientId, client_secret: other.clientSecret }, { client_id: app.clientId }];
    for (const fields of attempts) {
      const response = await post('/oauth/revoke', { token: pair.access_token, ...fields });
      assert.equal(response.status, 403);
      assert.deepEqual(await response.json(), { error: 'unauthorized_client', error_description: 'You are not authorized to revoke this token' });
    }
    assert.equal(await userStatus(pair.access_token), 200);
    // A public application's token is revoked with the token alone.
    const publicPair = await tokens(publicApp);
    const response = await post('/oauth/revoke', { token: publicPair.access_token });
    assert.equal(response.status, 200);
    await response.text();
    assert.equal(await userStatus(publicPair.access_token), 401);
  });

  test('/oauth/token/info: Doorkeeper\'s fields with the deprecated aliases; missing, unknown, expired and revoked tokens are 401 invalid_token', async () => {
    const pair = await tokens(app, 'api read_user');
    for (const [path, headers] of [
      [`/oauth/token/info?access_token=${pair.access_token}`, {}],
      ['/oauth/token/info', { Authorization: `Bearer ${pair.access_token}` }],
    ] as const) {
      const response = await client.get(path, headers);
      assert.equal(response.status, 200);
      const body = (await response.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), ['resource_owner_id', 'scope', 'expires_in', 'application', 'created_at', 'scopes', 'expires_in_seconds']);
      assert.equal(body.resource_owner_id, userId);
      assert.deepEqual(body.scope, ['api', 'read_user']);
      assert.deepEqual(body.scopes, ['api', 'read_user']);
      assert.deepEqual(body.application, { uid: app.clientId });
      assert.equal(body.created_at, pair.created_at);
      assert.ok(Number(body.expires_in) > 7190 && Number(body.expires_in) <= 7200);
      assert.equal(body.expires_in_seconds, body.expires_in);
    }
    const personal = gl.addToken(userId, { scopes: ['api'] });
    const expired = await tokens(app, 'api');
    gl.expireOAuthToken(expired.access_token);
    const revoked = await tokens(app, 'api');
    gl.revokeOAuthToken(revoked.access_token);
    const invalid: Array<Record<string, string>> = [
      {},
      { Authorization: 'Bearer nope' },
      { Authorization: `Bearer ${personal}` },
      { Authorization: `Bearer ${pair.refresh_token}` },
      { Authorization: `Bearer ${expired.access_token}` },
      { Authorization: `Bearer ${revoked.access_token}` },
    ];
    for (const headers of invalid) await assertInvalidToken(await client.get('/oauth/token/info', headers));
  });

  test('expireOAuthToken and revokeOAuthToken act on the pair; oauthTokens lists the records', async () => {
    const a = await tokens();
    gl.expireOAuthToken(a.refresh_token);
    assert.equal(await userStatus(a.access_token), 401);
    assert.equal((await refresh(a.refresh_token)).status, 200);
    const b = await tokens();
    gl.revokeOAuthToken(b.access_token);
    await assertOAuthError(await refresh(b.refresh_token), 400, 'invalid_grant', INVALID_GRANT);
    const record = gl.oauthTokens().find((t) => t.token === b.access_token);
    assert.equal(record?.userId, userId);
    assert.equal(record?.grantType, 'authorization_code');
    assert.notEqual(record?.revokedAtMs, null);
    assert.throws(() => gl.expireOAuthToken('nope'), /unknown OAuth token/);
  });
});
