import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashApiKey } from '../../src/core/index.ts';
import { hashPassword } from '../../src/server/web/index.ts';
import { hashSessionValue } from '../../src/server/web/session.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { csrfOf, webClient } from './client.ts';

const PASSWORD = 'correct horse battery';

describe('dashboard sign-in, sessions, CSRF and headers (in-process)', () => {
  let forgelink: TestForgelink;
  let alice: TestUser;

  before(async () => {
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
    await forgelink.storage.users.setPasswordHash(alice.id, await hashPassword(PASSWORD));
  });
  after(async () => {
    await forgelink.close();
  });

  async function signIn(client: ReturnType<typeof webClient>, username: string, password: string, next = '/') {
    const form = await client.get(`/sign-in?next=${encodeURIComponent(next)}`);
    return client.post('/sign-in', { _csrf: csrfOf(form.text), username, password, next });
  }

  test('a page needs a session: sign-in first, then back to the page asked for', async () => {
    const client = webClient(forgelink.app);
    const page = await client.get('/runs?connection=x');
    assert.equal(page.status, 302);
    assert.equal(page.location, '/sign-in?next=%2Fruns%3Fconnection%3Dx');
    const signedIn = await signIn(client, 'alice', PASSWORD, '/runs?connection=x');
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.location, '/runs?connection=x');
    const runs = await client.get('/runs');
    assert.equal(runs.status, 200);
    assert.match(runs.text, /Signed in as <strong>alice<\/strong>/);
  });

  test('the session cookie is HttpOnly, SameSite=Lax, path /, not readable as the stored id', async () => {
    const client = webClient(forgelink.app);
    const form = await client.get('/sign-in');
    const response = await forgelink.app.request('http://localhost/sign-in', {
      method: 'POST',
      headers: { origin: 'http://localhost', cookie: [...client.jar].map(([n, v]) => `${n}=${v}`).join('; ') },
      body: new URLSearchParams({ _csrf: csrfOf(form.text), username: 'alice', password: PASSWORD, next: '/' }),
    });
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('forgelink_session='));
    assert.ok(cookie !== undefined, 'no session cookie');
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.match(cookie, /Path=\//);
    const value = /^forgelink_session=([^;]+)/.exec(cookie)?.[1] as string;
    const rows = await forgelink.storage.db.selectFrom('sessions').select('id').execute();
    assert.ok(rows.every((row) => row.id !== value), 'the cookie value is stored as is');
    assert.ok(rows.some((row) => row.id === hashSessionValue(value)));
  });

  test('an API key works in the password field, with or without the user name', async () => {
    for (const username of ['', 'alice']) {
      const client = webClient(forgelink.app);
      const response = await signIn(client, username, alice.apiKey);
      assert.equal(response.status, 303, response.text);
    }
    const mismatch = await signIn(webClient(forgelink.app), 'bob', alice.apiKey);
    assert.equal(mismatch.status, 401);
  });

  test('a wrong password or key gets one generic answer; the sixth try within 15 minutes is rate-limited', async () => {
    const client = webClient(forgelink.app);
    await forgelink.addUser('carol');
    const wrong = [
      await signIn(client, 'carol', 'not the password'),
      await signIn(client, 'nobody-by-this-name', 'not the password'),
      await signIn(client, '', `flk_${'x'.repeat(43)}`),
    ];
    for (const response of wrong) {
      assert.equal(response.status, 401);
      assert.match(response.text, /The user name, password or API key is not right\./);
    }
    for (let i = 0; i < 4; i += 1) assert.equal((await signIn(client, 'carol', 'still wrong')).status, 401);
    const limited = await signIn(client, 'carol', 'still wrong');
    assert.equal(limited.status, 429);
    assert.match(limited.text, /Too many attempts, try again in 15 minutes\./);
    assert.equal(limited.headers.get('retry-after') !== null, true);
    // Another user name from the same address is counted on its own.
    assert.equal((await signIn(client, 'alice', PASSWORD)).status, 303);
  });

  test('the sign-in form itself is CSRF-protected', async () => {
    const client = webClient(forgelink.app);
    await client.get('/sign-in');
    const response = await client.post('/sign-in', { _csrf: 'forged', username: 'alice', password: PASSWORD });
    assert.equal(response.status, 403);
    const crossSite = webClient(forgelink.app);
    const form = await crossSite.get('/sign-in');
    const fromElsewhere = await crossSite.post('/sign-in', { _csrf: csrfOf(form.text), username: 'alice', password: PASSWORD }, { origin: 'https://evil.example' });
    assert.equal(fromElsewhere.status, 403);
  });

  test('a state-changing request without the CSRF token, with a wrong one, or from another origin is 403', async () => {
    const client = webClient(forgelink.app);
    await signIn(client, 'alice', PASSWORD);
    const page = await client.get('/integrations/gitlab');
    const token = csrfOf(page.text);
    const fields = { baseUrl: 'https://gitlab.example.com', token: 'glpat-aaaaaaaaaaaaaaaaaaaa' };
    for (const [body, headers] of [
      [fields, {}],
      [{ ...fields, _csrf: 'wrong' }, {}],
      [{ ...fields, _csrf: token }, { origin: 'https://evil.example' }],
      [{ ...fields, _csrf: token }, { origin: 'null' }],
    ] as const) {
      const response = await client.post('/integrations/gitlab/connections', body, headers);
      assert.equal(response.status, 403, JSON.stringify(headers));
      assert.match(response.text, /did not come from a forgelink page/);
    }
    assert.equal((await client.post('/sign-out', {})).status, 403);
    assert.deepEqual(await forgelink.storage.connections.listConnections(alice.id), []);
    const signedOut = await client.post('/sign-out', { _csrf: token });
    assert.equal(signedOut.status, 303);
    assert.equal(signedOut.location, '/sign-in?reason=signed-out');
    assert.equal((await client.get('/')).status, 302);
  });

  test('an expired session goes back to sign-in, which says so, and then to the page', async () => {
    const client = webClient(forgelink.app);
    await signIn(client, 'alice', PASSWORD);
    const id = hashSessionValue(client.jar.get('forgelink_session') as string);
    await forgelink.storage.sessions.touchSession(id, { lastSeenAt: '2020-01-01T00:00:00.000Z', expiresAt: '2020-01-01T12:00:00.000Z' });
    const page = await client.get('/integrations/gitlab');
    assert.equal(page.status, 302);
    assert.equal(page.location, '/sign-in?next=%2Fintegrations%2Fgitlab&reason=expired');
    assert.equal(await forgelink.storage.sessions.getSession(id), null, 'the expired session was not removed');
    const form = await client.get(page.location as string);
    assert.match(form.text, /Your session has ended/);
    const back = await client.post('/sign-in', { _csrf: csrfOf(form.text), username: 'alice', password: PASSWORD, next: '/integrations/gitlab' });
    assert.equal(back.location, '/integrations/gitlab');
  });

  test('next never leads off-site', async () => {
    for (const next of ['//evil.example/x', 'https://evil.example', '/\\evil.example']) {
      const response = await signIn(webClient(forgelink.app), 'alice', PASSWORD, next);
      assert.equal(response.location, '/', next);
    }
  });

  test('pages carry a strict CSP and the other security headers, and are not cached', async () => {
    const response = await webClient(forgelink.app).get('/sign-in');
    const csp = response.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) {
      assert.ok(csp.includes(directive), `${directive} missing from ${csp}`);
    }
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('referrer-policy'), 'same-origin');
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.doesNotMatch(response.text, /<script>|<style|\sstyle="|\son[a-z]+="/i, 'inline script or style');
  });

  test('assets are served with their types; unknown paths get a page, unknown API paths JSON', async () => {
    const page = await webClient(forgelink.app).get('/sign-in');
    const css = /href="(\/assets\/app\.css\?v=[0-9a-f]+)"/.exec(page.text)?.[1] as string;
    const js = /src="(\/assets\/app\.js\?v=[0-9a-f]+)"/.exec(page.text)?.[1] as string;
    assert.equal((await forgelink.app.request(css)).headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal((await forgelink.app.request(js)).headers.get('content-type'), 'text/javascript; charset=utf-8');
    const missing = await webClient(forgelink.app).get('/no/such/page');
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /text\/html/);
    const api = await forgelink.call(alice, 'GET', '/api/v1/nothing-here');
    assert.equal(api.status, 404);
    assert.equal(api.json.error.code, 'not_found');
  });

  test('a form too large for the server gets a page, not JSON', async () => {
    const client = webClient(forgelink.app);
    await signIn(client, 'alice', PASSWORD);
    const token = csrfOf((await client.get('/integrations/gitlab')).text);
    const response = await client.post('/integrations/gitlab/connections', { _csrf: token, caPem: 'x'.repeat(2 * 1024 * 1024) });
    assert.equal(response.status, 400);
    assert.match(response.headers.get('content-type') ?? '', /text\/html/);
    assert.match(response.text, /larger than 1048576 bytes/);
  });

  test('the API keeps Bearer keys and takes no cookies', async () => {
    const client = webClient(forgelink.app);
    await signIn(client, 'alice', PASSWORD);
    const withCookieOnly = await client.get('/api/v1/connections', { accept: 'application/json' });
    assert.equal(withCookieOnly.status, 401);
    assert.equal(await forgelink.storage.users.findUserByApiKeyHash(hashApiKey(alice.apiKey)).then((u) => u?.name), 'alice');
  });
});

describe('behind https', () => {
  test('the session cookie is Secure and __Host- prefixed', async () => {
    const forgelink = await startForgelink({ oauth: { apps: [], publicUrl: 'https://forgelink.example' } });
    try {
      const alice = await forgelink.addUser('alice');
      const client = webClient(forgelink.app, 'https://forgelink.example');
      const form = await client.get('/sign-in');
      assert.ok(client.jar.has('__Host-forgelink_signin'));
      const response = await forgelink.app.request('https://forgelink.example/sign-in', {
        method: 'POST',
        headers: { origin: 'https://forgelink.example', cookie: `__Host-forgelink_signin=${client.jar.get('__Host-forgelink_signin')}` },
        body: new URLSearchParams({ _csrf: csrfOf(form.text), username: '', password: alice.apiKey, next: '/' }),
      });
      assert.equal(response.status, 303);
      const cookie = response.headers.getSetCookie().find((line) => line.startsWith('__Host-forgelink_session='));
      assert.ok(cookie !== undefined, response.headers.getSetCookie().join('\n'));
      assert.match(cookie, /; Secure/);
      assert.match(cookie, /; HttpOnly/);
      assert.doesNotMatch(cookie, /Domain=/i);
    } finally {
      await forgelink.close();
    }
  });
});
