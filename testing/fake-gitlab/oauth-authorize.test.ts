import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab, type FakeOAuthApplication } from './index.ts';
import { browserFor, clientFor, formIn, pkcePair, type Browser } from './test-support.ts';

const REDIRECT = 'https://forgelink.example.com/integrations/gitlab/callback';
const DENIED = 'The resource owner or authorization server denied the request.';
/** Scopes alice never grants in these tests, so the consent page always shows (no matching token). */
const CONSENT_SCOPE = 'read_user write_repository';

/**
 * The browser side of the authorization code flow over HTTPS under a subpath: sign-in with a session
 * cookie, the consent page and its forms, deny, GitLab's error page, and the auto-approve switch.
 */
describe('OAuth authorization against the fake (HTTPS, subpath)', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let app: FakeOAuthApplication;
  let aliceId: number;
  const browsers: Browser[] = [];
  const browser = () => {
    const created = browserFor(gl);
    browsers.push(created);
    return created;
  };

  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    client = clientFor(gl);
    aliceId = gl.addUser({ username: 'alice', name: 'Alice Liddell' }).id;
    gl.setPassword(aliceId, 'wonderland');
    app = gl.addOAuthApplication({ name: 'Forgelink', redirectUri: REDIRECT, scopes: ['api', 'read_user', 'write_repository'] });
  });
  after(async () => {
    for (const b of browsers) await b.close();
    await client.close();
    await gl.close();
  });

  function authorizeUrl(params: Record<string, string>, target: FakeOAuthApplication = app): string {
    const query = new URLSearchParams({
      client_id: target.clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      state: 'st-123',
      scope: 'api read_user',
      ...params,
    });
    return `${gl.baseUrl}/oauth/authorize?${query}`;
  }

  function exchange(code: string, verifier: string) {
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: app.clientId,
      client_secret: app.clientSecret,
    });
    return client.post('/oauth/token', form.toString(), { 'Content-Type': 'application/x-www-form-urlencoded' });
  }

  /** Signs alice in through the form; resolves to where the sign-in sent the browser. */
  async function signIn(b: Browser, password = 'wonderland'): Promise<string> {
    const page = await b.get(`${gl.baseUrl}/users/sign_in`);
    assert.equal(page.status, 200);
    const form = formIn(await page.text());
    assert.equal(form.action, '/gitlab/users/sign_in');
    const response = await b.submit(`${gl.baseUrl}/users/sign_in`, {
      ...form.fields,
      'user[login]': 'alice',
      'user[password]': password,
    });
    assert.equal(response.status, 302);
    return response.headers.get('location') ?? '';
  }

  test('full code flow with PKCE: sign-in, consent, code, token, API', async () => {
    const b = browser();
    const { verifier, challenge } = pkcePair();
    const url = authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256' });

    const first = await b.get(url);
    assert.equal(first.status, 302);
    assert.equal(first.headers.get('location'), `${gl.baseUrl}/users/sign_in`);
    const cookie = first.headers.getSetCookie().find((c) => c.startsWith('_gitlab_session='));
    assert.match(cookie ?? '', /; Path=\/gitlab; HttpOnly; Secure; SameSite=Lax$/);

    // A wrong password goes back to the form with Devise's alert; the right one continues to authorize.
    assert.equal(await signIn(b, 'wrong'), `${gl.baseUrl}/users/sign_in`);
    assert.match(await (await b.get(`${gl.baseUrl}/users/sign_in`)).text(), /Invalid login or password\./);
    const before = b.cookies().get('_gitlab_session');
    assert.equal(await signIn(b), url);
    assert.notEqual(b.cookies().get('_gitlab_session'), before, 'the session id is renewed on sign-in');

    const consent = await b.get(url);
    assert.equal(consent.status, 200);
    const html = await consent.text();
    assert.match(html, /Authorize Forgelink to use your account\?/);
    assert.match(html, /Alice Liddell/);
    assert.match(html, /data-scope="api"/);
    assert.match(html, /data-scope="read_user"/);
    assert.doesNotMatch(html, /data-scope="write_repository"/);
    assert.match(html, /redirected to <strong>forgelink\.example\.com<\/strong>/);
    const approve = formIn(html, 'authorize-form');
    assert.equal(approve.action, '/gitlab/oauth/authorize');
    assert.deepEqual(
      { ...approve.fields, authenticity_token: 'x' },
      {
        authenticity_token: 'x',
        client_id: app.clientId,
        redirect_uri: REDIRECT,
        state: 'st-123',
        response_type: 'code',
        scope: 'api read_user',
        nonce: '',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      },
    );

    const approved = await b.submit(`${gl.baseUrl}/oauth/authorize`, approve.fields);
    assert.equal(approved.status, 302);
    const callback = new URL(approved.headers.get('location') ?? '');
    assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT);
    assert.deepEqual([...callback.searchParams.keys()], ['code', 'state']);
    assert.equal(callback.searchParams.get('state'), 'st-123');
    const code = callback.searchParams.get('code') ?? '';
    assert.match(code, /^[0-9a-f]{64}$/);

    const token = await exchange(code, verifier);
    assert.equal(token.status, 200);
    assert.equal(token.headers.get('cache-control'), 'no-store');
    const body = (await token.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['access_token', 'token_type', 'expires_in', 'refresh_token', 'scope', 'created_at']);
    assert.match(String(body.access_token), /^[0-9a-f]{64}$/);
    assert.match(String(body.refresh_token), /^[0-9a-f]{64}$/);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 7200);
    assert.equal(body.scope, 'api read_user');
    assert.ok(Math.abs(Number(body.created_at) - Date.now() / 1000) < 5);

    const user = await client.get('/api/v4/user', { Authorization: `Bearer ${String(body.access_token)}` });
    assert.equal(user.status, 200);
    assert.equal(((await user.json()) as { username: string }).username, 'alice');
    assert.deepEqual(gl.oauthStats(), { authorizations: 1, codeExchanges: 1, refreshes: 0, revocations: 0 });

    // A confidential application the user already authorized with these scopes skips the consent page
    // and goes through GitLab's "Redirecting" page.
    const again = await b.get(authorizeUrl({ state: 'st-again' }));
    assert.equal(again.status, 200);
    const page = await again.text();
    assert.match(page, /<h3>Redirecting<\/h3>/);
    const link = new URL(page.match(/<a href="([^"]+)"/)?.[1]?.replace(/&#38;/g, '&') ?? '');
    assert.equal(link.searchParams.get('state'), 'st-again');
    assert.match(link.searchParams.get('code') ?? '', /^[0-9a-f]{64}$/);
    // Other scopes need consent again.
    assert.match(await (await b.get(authorizeUrl({ scope: 'read_user' }))).text(), /Authorize Forgelink/);
  });

  test('Deny redirects with access_denied and the state', async () => {
    const b = browser();
    await signIn(b);
    const html = await (await b.get(authorizeUrl({ state: 'deny-me', scope: CONSENT_SCOPE }))).text();
    const deny = formIn(html, 'deny-form');
    assert.equal(deny.fields._method, 'delete');
    const denied = await b.submit(`${gl.baseUrl}/oauth/authorize`, deny.fields);
    assert.equal(denied.status, 302);
    assert.equal(
      denied.headers.get('location'),
      `${REDIRECT}?error=access_denied&error_description=${DENIED.replace(/ /g, '+')}&state=deny-me`,
    );
  });

  test('a form without the session\'s authenticity token is rejected with 422', async () => {
    const b = browser();
    await signIn(b);
    const approve = formIn(await (await b.get(authorizeUrl({ scope: CONSENT_SCOPE }))).text(), 'authorize-form');
    const forged = await b.submit(`${gl.baseUrl}/oauth/authorize`, { ...approve.fields, authenticity_token: 'forged' });
    assert.equal(forged.status, 422);
    assert.match(await forged.text(), /The change you requested was rejected\./);
    const other = browser();
    await signIn(other);
    assert.equal((await other.submit(`${gl.baseUrl}/oauth/authorize`, approve.fields)).status, 422);
  });

  test('the root page shows who is signed in; signing out ends the session', async () => {
    const b = browser();
    assert.equal((await b.get(gl.baseUrl)).headers.get('location'), `${gl.baseUrl}/users/sign_in`);
    assert.equal(await signIn(b), gl.baseUrl);
    const home = await b.get(gl.baseUrl);
    assert.equal(home.status, 200);
    const html = await home.text();
    assert.match(html, /Signed in as <strong>Alice Liddell<\/strong>/);
    const token = formIn(await (await b.get(authorizeUrl({ scope: CONSENT_SCOPE }))).text(), 'authorize-form').fields.authenticity_token ?? '';
    const out = await b.submit(`${gl.baseUrl}/users/sign_out`, { _method: 'delete', authenticity_token: token });
    assert.equal(out.status, 302);
    assert.equal((await b.get(authorizeUrl({}))).headers.get('location'), `${gl.baseUrl}/users/sign_in`);
  });

  const invalid: Array<[string, Record<string, string>, string]> = [
    ['an unknown client', { client_id: 'nope' }, 'Client authentication failed due to unknown client'],
    ['a redirect URI that is not registered', { redirect_uri: 'https://evil.example.com/cb' }, 'The redirect URI included is not valid.'],
    ['a scope the application lacks', { scope: 'read_repository' }, 'The requested scope is invalid, unknown, or malformed.'],
    ['an unknown scope', { scope: 'api everything' }, 'The requested scope is invalid, unknown, or malformed.'],
    ['response_type=token', { response_type: 'token' }, 'The authorization server does not support this response type.'],
    ['a plain PKCE challenge', { code_challenge: 'abc', code_challenge_method: 'plain' }, 'The code_challenge_method must be S256.'],
    ['a challenge without method', { code_challenge: 'abc' }, 'The code_challenge_method must be S256.'],
  ];
  for (const [what, params, description] of invalid) {
    test(`GET with ${what} shows GitLab's error page, no redirect`, async () => {
      const b = browser();
      await signIn(b);
      const response = await b.get(authorizeUrl(params));
      assert.equal(response.status, 200);
      const html = await response.text();
      assert.match(html, /<h1>An error has occurred<\/h1>/);
      assert.ok(html.includes(description), html);
    });
  }

  test('POST with an invalid scope redirects the error; an unknown redirect URI gets JSON', async () => {
    const b = browser();
    await signIn(b);
    const approve = formIn(await (await b.get(authorizeUrl({ scope: CONSENT_SCOPE }))).text(), 'authorize-form');
    const badScope = await b.submit(`${gl.baseUrl}/oauth/authorize`, { ...approve.fields, scope: 'sudo' });
    assert.equal(badScope.status, 302);
    const location = new URL(badScope.headers.get('location') ?? '');
    assert.equal(location.searchParams.get('error'), 'invalid_scope');
    assert.equal(location.searchParams.get('state'), 'st-123');
    const badRedirect = await b.submit(`${gl.baseUrl}/oauth/authorize`, { ...approve.fields, redirect_uri: 'https://evil.example.com/' });
    assert.equal(badRedirect.status, 400);
    assert.deepEqual(await badRedirect.json(), {
      error: 'invalid_redirect_uri',
      error_description: 'The redirect URI included is not valid.',
      state: 'st-123',
    });
  });

  test('auto-approve: an immediate 302 with a code, no sign-in; a public application exchanges it without a secret', async () => {
    const publicApp = gl.addOAuthApplication({ name: 'CLI', redirectUri: 'http://127.0.0.1/callback', scopes: ['read_user'], confidential: false });
    gl.oauthAutoApprove(aliceId);
    try {
      const { verifier, challenge } = pkcePair();
      const query = new URLSearchParams({
        client_id: publicApp.clientId,
        // RFC 8252 section 7.3: a loopback redirect URI matches on any port.
        redirect_uri: 'http://127.0.0.1:45678/callback',
        response_type: 'code',
        state: 'auto',
        scope: 'read_user',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      });
      const response = await browser().get(`${gl.baseUrl}/oauth/authorize?${query}`);
      assert.equal(response.status, 302);
      const location = new URL(response.headers.get('location') ?? '');
      assert.equal(`${location.origin}${location.pathname}`, 'http://127.0.0.1:45678/callback');
      assert.equal(location.searchParams.get('state'), 'auto');
      const form = new URLSearchParams({
        grant_type: 'authorization_code',
        code: location.searchParams.get('code') ?? '',
        redirect_uri: 'http://127.0.0.1:45678/callback',
        code_verifier: verifier,
        client_id: publicApp.clientId,
      });
      const token = await client.post('/oauth/token', form.toString(), { 'Content-Type': 'application/x-www-form-urlencoded' });
      assert.equal(token.status, 200);
      const { access_token: accessToken } = (await token.json()) as { access_token: string };
      assert.equal((await client.get('/api/v4/user', { Authorization: `Bearer ${accessToken}` })).status, 200);

      // Invalid requests still get the error page. Without `scope` GitLab grants its default, api, which
      // this application does not allow.
      query.delete('scope');
      const invalid = await browser().get(`${gl.baseUrl}/oauth/authorize?${query}`);
      assert.equal(invalid.status, 200);
      assert.match(await invalid.text(), /The requested scope is invalid/);
    } finally {
      gl.oauthAutoApprove(null);
    }
  });
});
