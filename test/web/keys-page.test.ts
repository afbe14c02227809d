import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/server/web/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { csrfOf, signedInClient, webClient } from './client.ts';

const PASSWORD = 'a long dashboard password';

describe('the API keys page (in-process, without JavaScript)', () => {
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let aliceClient: ReturnType<typeof webClient>;
  let bobClient: ReturnType<typeof webClient>;

  async function signedIn(user: TestUser) {
    await forgelink.storage.users.setPasswordHash(user.id, await hashPassword(PASSWORD));
    return signedInClient(forgelink.app, user.name, PASSWORD);
  }

  /** Creates a key through the form; the page that answers. */
  async function createThroughForm(client: ReturnType<typeof webClient>, name: string) {
    const page = await client.get('/settings/keys');
    return client.post('/settings/keys', { _csrf: csrfOf(page.text), name });
  }

  function shownKey(html: string): string {
    const match = /id="new-key"[^>]* value="(flk_[A-Za-z0-9_-]{43})"/.exec(html);
    assert.ok(match, 'the new key is on the page');
    return match[1] as string;
  }

  function keyIdNamed(html: string, name: string): string {
    const match = new RegExp(`<th scope="row">${name}</th>\\s*<td[^>]*><code>[^<]+</code></td>\\s*<td[^>]*><code>(key_[0-9a-f]{20})</code>`).exec(html);
    assert.ok(match, `a row for ${name}`);
    return match[1] as string;
  }

  before(async () => {
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
    aliceClient = await signedIn(alice);
    bobClient = await signedIn(bob);
  });
  after(async () => {
    await forgelink.close();
  });

  test('signed out, the page sends the browser to sign in and back', async () => {
    const response = await webClient(forgelink.app).get('/settings/keys');
    assert.equal(response.status, 302);
    assert.equal(response.location, '/sign-in?next=%2Fsettings%2Fkeys');
  });

  test('every page links to it; it lists the keys with name, prefix, id, created and last used, and never a key', async () => {
    const dashboard = await aliceClient.get('/');
    assert.match(dashboard.text, /<a href="\/settings\/keys">API keys<\/a>/);
    const page = await aliceClient.get('/settings/keys');
    assert.equal(page.status, 200);
    assert.match(page.text, /<a href="\/settings\/keys" aria-current="page">API keys<\/a>/);
    assert.match(page.text, /<th scope="row">initial<\/th>\s*<td[^>]*><code>flk_…<\/code><\/td>\s*<td[^>]*><code>key_[0-9a-f]{20}<\/code><\/td>\s*<td[^>]*>\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/td>\s*<td[^>]*>never<\/td>/);
    assert.ok(!page.text.includes(alice.apiKey));
    assert.equal(page.headers.get('cache-control'), 'no-store');
  });

  test('creating a key shows it once, with a copy hint; it works on the API; the next visit shows only its prefix', async () => {
    const response = await createThroughForm(aliceClient, 'laptop');
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.match(response.text, /Copy it now: it is shown only this once\./);
    assert.match(response.text, /<button type="button" data-copy="new-key" hidden>Copy<\/button>/);
    const key = shownKey(response.text);
    assert.equal((await forgelink.call({ ...alice, apiKey: key }, 'GET', '/api/v1/me')).json.name, 'alice');

    const again = await aliceClient.get('/settings/keys');
    assert.ok(!again.text.includes(key));
    assert.match(again.text, new RegExp(`<th scope="row">laptop</th>\\s*<td[^>]*><code>${key.slice(0, 8)}…</code></td>`));
    const audit = await forgelink.storage.audit.list({ ownerId: alice.id });
    const entry = audit.find((item) => item.action === 'api_key.created' && item.details.name === 'laptop');
    assert.deepEqual(entry?.details, { keyId: keyIdNamed(again.text, 'laptop'), name: 'laptop', prefix: key.slice(0, 8), via: 'dashboard' });
    assert.equal(entry?.actor, alice.id);
  });

  test('a refused name is told next to the field, keeps what was typed, and makes nothing', async () => {
    const before = (await forgelink.call(alice, 'GET', '/api/v1/keys')).json.keys.length;
    const empty = await createThroughForm(aliceClient, '  ');
    assert.equal(empty.status, 400);
    assert.match(empty.text, /<p class="field-error" id="name-error"><span class="visually-hidden">Error: <\/span>Give the key a name/);
    assert.match(empty.text, /id="name"[^>]*aria-invalid="true"/);
    assert.ok(!/id="new-key"/.test(empty.text));

    await createThroughForm(aliceClient, 'ci');
    const duplicate = await createThroughForm(aliceClient, 'ci');
    assert.equal(duplicate.status, 409);
    assert.match(duplicate.text, /id="name-error"[^>]*>.*You already have a key named &quot;ci&quot;/s);
    assert.match(duplicate.text, /id="name"[^>]*value="ci"/);
    assert.equal((await forgelink.call(alice, 'GET', '/api/v1/keys')).json.keys.length, before + 1);
  });

  test('revoking asks first, needs the CSRF token, and takes effect on the next API request', async () => {
    const created = await createThroughForm(aliceClient, 'to revoke');
    const key = shownKey(created.text);
    const page = await aliceClient.get('/settings/keys');
    const id = keyIdNamed(page.text, 'to revoke');
    assert.match(page.text, new RegExp(`<details class="confirm">\\s*<summary>Revoke…</summary>[\\s\\S]*?Revoke <strong>to revoke</strong>\\?[\\s\\S]*?action="/settings/keys/${id}/revoke"`));

    const forged = await aliceClient.post(`/settings/keys/${id}/revoke`, { _csrf: 'wrong' });
    assert.equal(forged.status, 403);
    const crossSite = await aliceClient.post(`/settings/keys/${id}/revoke`, { _csrf: csrfOf(page.text) }, { origin: 'https://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.equal((await forgelink.call({ ...alice, apiKey: key }, 'GET', '/api/v1/me')).status, 200);

    const revoked = await aliceClient.post(`/settings/keys/${id}/revoke`, { _csrf: csrfOf(page.text) });
    assert.equal(revoked.status, 303);
    assert.equal(revoked.location, `/settings/keys?revoked=${id}`);
    assert.equal((await forgelink.call({ ...alice, apiKey: key }, 'GET', '/api/v1/me')).status, 401);
    const after = await aliceClient.get(revoked.location as string);
    assert.match(after.text, new RegExp(`Revoked ${id}: anything still using it is refused from now on\\.`));
    assert.ok(!after.text.includes('<th scope="row">to revoke</th>'));
    // Only key ids are echoed back.
    assert.ok(!(await aliceClient.get('/settings/keys?revoked=Your+account+is+locked')).text.includes('Your account is locked'));
  });

  test("another user's key is not found and stays working", async () => {
    const created = await createThroughForm(aliceClient, 'alice only');
    const key = shownKey(created.text);
    const id = keyIdNamed((await aliceClient.get('/settings/keys')).text, 'alice only');
    const bobPage = await bobClient.get('/settings/keys');
    assert.ok(!bobPage.text.includes(id));
    const response = await bobClient.post(`/settings/keys/${id}/revoke`, { _csrf: csrfOf(bobPage.text) });
    assert.equal(response.status, 404);
    assert.equal((await forgelink.call({ ...alice, apiKey: key }, 'GET', '/api/v1/me')).status, 200);
  });

  test('signing in with an API key counts as its use', async () => {
    const client = webClient(forgelink.app);
    const form = await client.get('/sign-in');
    assert.equal((await client.post('/sign-in', { _csrf: csrfOf(form.text), username: '', password: bob.apiKey, next: '/settings/keys' })).status, 303);
    const page = await client.get('/settings/keys');
    assert.match(page.text, /<th scope="row">initial<\/th>\s*<td[^>]*><code>flk_…<\/code><\/td>\s*<td[^>]*><code>key_[0-9a-f]{20}<\/code><\/td>\s*<td[^>]*>[^<]+<\/td>\s*<td[^>]*>\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/td>/);
  });
});
