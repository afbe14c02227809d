import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { ForgelinkError, InputError, type Clock } from '../../src/core/index.ts';
import { oauthRedirectUri } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { browserFor, formIn } from '../../testing/fake-gitlab/test-support.ts';
import { startForgelink, TEST_PUBLIC_URL, type TestForgelink, type TestUser } from '../support/forgelink.ts';

const REDIRECT_URI = oauthRedirectUri(TEST_PUBLIC_URL);

describe('OAuth connect flow against the fake GitLab over HTTPS under a subpath', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let botId: number;
  let offsetMs = 0;
  const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
  let dispatcher: Agent;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'oauth-bot', name: 'OAuth Bot' }).id;
    gitlab.addProject({ path: 'acme/app', members: [{ userId: botId, accessLevel: 30 }] });
    gitlab.oauthAutoApprove(botId);
    const app = gitlab.addOAuthApplication({ name: 'forgelink', redirectUri: REDIRECT_URI, scopes: ['api', 'read_user'] });
    forgelink = await startForgelink({
      clock,
      oauth: { apps: [{ baseUrl: gitlab.baseUrl, clientId: app.clientId, clientSecret: app.clientSecret, caPem: gitlab.caPem }] },
    });
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
    dispatcher = new Agent({ connect: { ca: gitlab.caPem ?? undefined } });
  });
  after(async () => {
    await dispatcher.close();
    await forgelink.close();
    await gitlab.close();
  });

  /** What the browser does at GitLab with auto-approval on: the authorize redirect, read back as the callback's query. */
  async function authorize(authorizeUrl: string): Promise<Record<string, string>> {
    const response = await fetch(authorizeUrl, { redirect: 'manual', dispatcher });
    assert.equal(response.status, 302, await response.text());
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
    return Object.fromEntries(location.searchParams);
  }

  async function rejects(promise: Promise<unknown>, code: string): Promise<ForgelinkError> {
    let caught: unknown;
    await promise.then(
      () => assert.fail(`expected ${code}`),
      (error: unknown) => {
        caught = error;
      },
    );
    assert.ok(caught instanceof ForgelinkError, String(caught));
    assert.equal(caught.code, code, caught.message);
    return caught;
  }

  function everyOAuthToken(): string[] {
    return gitlab.oauthTokens().flatMap((token) => [token.token, token.refreshToken]);
  }

  test('start → GitLab → callback creates an oauth connection with the account and scopes', async () => {
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-alice', baseUrl: gitlab.baseUrl });
    const url = new URL(authorizeUrl);
    assert.equal(`${url.origin}${url.pathname}`, `${gitlab.baseUrl}/oauth/authorize`);
    assert.equal(url.searchParams.get('response_type'), 'code');
    assert.equal(url.searchParams.get('redirect_uri'), REDIRECT_URI);
    assert.equal(url.searchParams.get('scope'), 'api read_user');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    const state = url.searchParams.get('state') ?? '';
    assert.ok(state.length >= 32);
    // Only the state's hash is stored.
    const rows = await forgelink.storage.db.selectFrom('oauth_states').selectAll().execute();
    assert.ok(!JSON.stringify(rows).includes(state));

    const query = await authorize(authorizeUrl);
    assert.equal(query.state, state);
    const connection = await forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-alice', query });
    assert.equal(connection.kind, 'oauth');
    assert.equal(connection.baseUrl, gitlab.baseUrl);
    assert.deepEqual(connection.account, { id: botId, username: 'oauth-bot', name: 'OAuth Bot' });
    assert.deepEqual(connection.scopes, ['api', 'read_user']);
    assert.equal(connection.expiresAt, null);
    assert.ok(connection.tokenExpiresAt !== null && Date.parse(connection.tokenExpiresAt) > Date.now() + 3600_000);
    assert.equal(connection.status, 'active');
    assert.equal(connection.hasCustomCa, true);
    assert.equal(connection.capabilities.issues, true);
    assert.deepEqual(connection.warnings, [], 'OAuth tokens expire and are renewed: no no_expiry, no broad_scope');
    assert.equal(gitlab.oauthStats().codeExchanges, 1);

    const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${connection.id}`);
    assert.equal(shown.status, 200);
    assert.deepEqual(shown.json, connection);
    assert.equal((await forgelink.call(bob, 'GET', `/api/v1/connections/${connection.id}`)).status, 404);
    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${connection.id}/check`);
    assert.equal(checked.status, 200, checked.text);
    assert.equal(checked.json.status, 'active');
    assert.deepEqual(checked.json.scopes, ['api', 'read_user']);
    const projects = await forgelink.call(alice, 'GET', `/api/v1/connections/${connection.id}/projects`);
    assert.equal(projects.status, 200, projects.text);
    assert.deepEqual(projects.json.projects.map((p: { pathWithNamespace: string }) => p.pathWithNamespace), ['acme/app']);

    // The same callback again: the state was spent.
    await rejects(forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-alice', query }), 'invalid_state');
    assert.equal(gitlab.oauthStats().codeExchanges, 1, 'a replay never reaches GitLab');
  });

  test("a state from another browser session or another user is refused, and is spent by the attempt", async () => {
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-one', baseUrl: gitlab.baseUrl });
    const query = await authorize(authorizeUrl);
    const error = await rejects(forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-two', query }), 'invalid_state');
    assert.ok(error instanceof InputError);
    await rejects(forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-one', query }), 'invalid_state');

    const other = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-three', baseUrl: gitlab.baseUrl });
    const stolen = await authorize(other.authorizeUrl);
    await rejects(forgelink.oauthFlow.finish({ userId: bob.id, sessionId: 's-three', query: stolen }), 'invalid_state');
  });

  test('a forged or missing state is refused before anything reaches GitLab', async () => {
    const exchanges = gitlab.oauthStats().codeExchanges;
    await rejects(
      forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-alice', query: { code: 'whatever', state: randomBytes(32).toString('base64url') } }),
      'invalid_state',
    );
    await rejects(forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-alice', query: { code: 'whatever' } }), 'invalid_state');
    assert.equal(gitlab.oauthStats().codeExchanges, exchanges);
  });

  test('a state older than ten minutes has expired', async () => {
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-alice', baseUrl: gitlab.baseUrl });
    const query = await authorize(authorizeUrl);
    offsetMs = 11 * 60_000;
    try {
      const error = await rejects(forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-alice', query }), 'invalid_state');
      assert.match(error.message, /expired/);
    } finally {
      offsetMs = 0;
    }
  });

  test('PKCE: a verifier that does not match the challenge makes GitLab refuse the exchange', async () => {
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-pkce', baseUrl: gitlab.baseUrl });
    // Swap the stored verifier for another, sealed the way the flow seals it.
    const row = await forgelink.storage.db.selectFrom('oauth_states').selectAll().where('session_id', '=', 's-pkce').executeTakeFirstOrThrow();
    const wrong = randomBytes(32).toString('base64url');
    await forgelink.storage.db
      .updateTable('oauth_states')
      .set({ verifier_sealed: forgelink.vault.seal(wrong, { ownerId: alice.id, recordId: row.id, purpose: 'pkce_verifier' }) })
      .where('id', '=', row.id)
      .execute();
    const before = (await forgelink.call(alice, 'GET', '/api/v1/connections')).json.connections.length;
    const query = await authorize(authorizeUrl);
    const error = await rejects(forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-pkce', query }), 'exchange_failed');
    assert.match(error.message, /invalid_grant/);
    assert.equal((await forgelink.call(alice, 'GET', '/api/v1/connections')).json.connections.length, before, 'nothing half-made');
  });

  test('a verifier moved to another state does not open (the vault binds it to its row)', async () => {
    await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-a', baseUrl: gitlab.baseUrl });
    const second = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-b', baseUrl: gitlab.baseUrl });
    const rows = await forgelink.storage.db.selectFrom('oauth_states').selectAll().where('session_id', 'in', ['s-a', 's-b']).execute();
    const a = rows.find((row) => row.session_id === 's-a');
    const b = rows.find((row) => row.session_id === 's-b');
    assert.ok(a && b);
    await forgelink.storage.db.updateTable('oauth_states').set({ verifier_sealed: a.verifier_sealed }).where('id', '=', b.id).execute();
    const query = await authorize(second.authorizeUrl);
    await assert.rejects(forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-b', query }), (error: unknown) => error instanceof ForgelinkError);
  });

  test('Deny at GitLab ends with access_denied; another authorization error names itself', async () => {
    const denierId = gitlab.addUser({ username: 'denier', name: 'Denier' }).id;
    gitlab.setPassword(denierId, 'pw');
    gitlab.oauthAutoApprove(null);
    const browser = browserFor(gitlab);
    try {
      const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-deny', baseUrl: gitlab.baseUrl });
      const signIn = formIn(await (await browser.get(`${gitlab.baseUrl}/users/sign_in`)).text());
      const signedIn = await browser.submit(`${gitlab.baseUrl}/users/sign_in`, { ...signIn.fields, 'user[login]': 'denier', 'user[password]': 'pw' });
      assert.equal(signedIn.status, 302);
      const consent = await browser.get(authorizeUrl);
      assert.equal(consent.status, 200);
      const deny = formIn(await consent.text(), 'deny-form');
      const denied = await browser.submit(`${gitlab.baseUrl}/oauth/authorize`, deny.fields);
      assert.equal(denied.status, 302);
      const location = new URL(denied.headers.get('location') ?? '');
      const query = Object.fromEntries(location.searchParams);
      assert.equal(query.error, 'access_denied');
      const error = await rejects(forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-deny', query }), 'access_denied');
      assert.ok(error instanceof InputError);
    } finally {
      await browser.close();
      gitlab.oauthAutoApprove(botId);
    }
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-err', baseUrl: gitlab.baseUrl });
    const state = new URL(authorizeUrl).searchParams.get('state') ?? '';
    const error = await rejects(
      forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-err', query: { error: 'invalid_scope', error_description: 'The requested scope is invalid.', state } }),
      'authorization_failed',
    );
    assert.match(error.message, /invalid_scope/);
  });

  test('an instance without an OAuth application cannot start', async () => {
    await rejects(forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's', baseUrl: 'https://gitlab.example.com' }), 'oauth_not_configured');
    assert.deepEqual(forgelink.oauthFlow.instances(), [gitlab.baseUrl]);
  });

  test('disconnect revokes the authorization at GitLab', async () => {
    const { authorizeUrl } = await forgelink.oauthFlow.start({ userId: alice.id, sessionId: 's-bye', baseUrl: gitlab.baseUrl });
    const connection = await forgelink.oauthFlow.finish({ userId: alice.id, sessionId: 's-bye', query: await authorize(authorizeUrl) });
    const pair = gitlab.oauthTokens().at(-1);
    assert.ok(pair && pair.revokedAtMs === null);
    const revocations = gitlab.oauthStats().revocations;
    const deleted = await forgelink.call(alice, 'DELETE', `/api/v1/connections/${connection.id}`);
    assert.equal(deleted.status, 204, deleted.text);
    assert.ok(gitlab.oauthStats().revocations > revocations);
    assert.notEqual(pair.revokedAtMs, null, 'the pair is revoked at GitLab');
    assert.equal((await forgelink.call(alice, 'GET', `/api/v1/connections/${connection.id}`)).status, 404);
    const secrets = await forgelink.storage.db.selectFrom('secrets').selectAll().where('connection_id', '=', connection.id).execute();
    assert.deepEqual(secrets, []);
  });

  test('when GitLab cannot be reached, disconnect still deletes and says the revocation failed', async () => {
    const other = await startFakeGitLab();
    const user = other.addUser({ username: 'x' }).id;
    other.oauthAutoApprove(user);
    const app = other.addOAuthApplication({ redirectUri: REDIRECT_URI, scopes: ['api', 'read_user'] });
    const local = await startForgelink({ oauth: { apps: [{ baseUrl: other.baseUrl, clientId: app.clientId, clientSecret: app.clientSecret, caPem: null }] } });
    try {
      const carol = await local.addUser('carol');
      const { authorizeUrl } = await local.oauthFlow.start({ userId: carol.id, sessionId: 's', baseUrl: other.baseUrl });
      const response = await fetch(authorizeUrl, { redirect: 'manual' });
      const query = Object.fromEntries(new URL(response.headers.get('location') ?? '').searchParams);
      const connection = await local.oauthFlow.finish({ userId: carol.id, sessionId: 's', query });
      await other.close();
      const deleted = await local.call(carol, 'DELETE', `/api/v1/connections/${connection.id}`);
      assert.equal(deleted.status, 200, deleted.text);
      assert.equal(deleted.json.disconnected, true);
      assert.equal(deleted.json.warnings[0].code, 'revocation_failed');
      assert.match(deleted.json.warnings[0].message, /Applications/);
      assert.equal((await local.call(carol, 'GET', `/api/v1/connections/${connection.id}`)).status, 404);
    } finally {
      await local.close();
      await other.close().catch(() => {});
    }
  });

  test('a non-confidential application (no client secret): connect, refresh and revoke with PKCE and the client id only', async () => {
    const publicApp = gitlab.addOAuthApplication({ name: 'public', redirectUri: REDIRECT_URI, scopes: ['api', 'read_user'], confidential: false });
    const local = await startForgelink({ oauth: { apps: [{ baseUrl: gitlab.baseUrl, clientId: publicApp.clientId, clientSecret: null, caPem: gitlab.caPem }] } });
    try {
      const dave = await local.addUser('dave');
      const { authorizeUrl } = await local.oauthFlow.start({ userId: dave.id, sessionId: 's', baseUrl: '' });
      const connection = await local.oauthFlow.finish({ userId: dave.id, sessionId: 's', query: await authorize(authorizeUrl) });
      const stored = await local.storage.connections.getConnection(dave.id, connection.id);
      assert.ok(stored);
      const first = await local.tokens.currentToken(stored);
      const refreshes = gitlab.oauthStats().refreshes;
      const second = await local.tokens.refresh(stored, first);
      assert.notEqual(second, first);
      assert.equal(gitlab.oauthStats().refreshes - refreshes, 1);
      const checked = await local.call(dave, 'POST', `/api/v1/connections/${connection.id}/check`);
      assert.equal(checked.json.status, 'active', checked.text);
      const revocations = gitlab.oauthStats().revocations;
      assert.equal((await local.call(dave, 'DELETE', `/api/v1/connections/${connection.id}`)).status, 204);
      assert.ok(gitlab.oauthStats().revocations > revocations);
    } finally {
      await local.close();
    }
  });

  test('no OAuth token in any API response, log line or database row', async () => {
    const tokens = everyOAuthToken();
    assert.ok(tokens.length >= 4);
    const list = await forgelink.call(alice, 'GET', '/api/v1/connections');
    let everything = list.text;
    for (const connection of list.json.connections) {
      everything += (await forgelink.call(alice, 'GET', `/api/v1/connections/${connection.id}`)).text;
      everything += (await forgelink.call(alice, 'POST', `/api/v1/connections/${connection.id}/check`)).text;
      everything += (await forgelink.call(alice, 'GET', `/api/v1/connections/${connection.id}/projects`)).text;
    }
    everything += forgelink.logs.join('');
    for (const table of ['connections', 'secrets', 'oauth_states'] as const) {
      everything += JSON.stringify(await forgelink.storage.db.selectFrom(table).selectAll().execute());
    }
    for (const token of tokens) assert.ok(!everything.includes(token), 'an OAuth token leaked');
  });
});
