import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/server/web/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { csrfOf, webClient } from './client.ts';

const PASSWORD = 'a long dashboard password';

describe('messages that fit who asks and where (in-process)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
    await forgelink.storage.users.setPasswordHash(alice.id, await hashPassword(PASSWORD));
  });

  after(async () => {
    await forgelink?.close();
    await gitlab?.close();
  });

  test('curl / without a session is sent to sign-in, which says nothing about an ended session', async () => {
    const response = await forgelink.app.request('http://localhost/', { headers: { accept: '*/*' } });
    assert.equal(response.status, 302);
    const location = response.headers.get('location') ?? '';
    assert.match(location, /^\/sign-in\?/);
    assert.doesNotMatch(location, /expired/);
    const page = await forgelink.app.request(`http://localhost${location}`, { headers: { accept: '*/*' } });
    assert.equal(page.status, 200);
    assert.doesNotMatch(await page.text(), /session has ended/i);
  });

  test('a dashboard JSON endpoint without a session asks to sign in, not "session ended"', async () => {
    const response = await forgelink.app.request('http://localhost/integrations/gitlab/connections/con_x/projects', {
      headers: { accept: 'application/json' },
    });
    assert.equal(response.status, 401);
    const body = (await response.json()) as { error: { message: string } };
    assert.doesNotMatch(body.error.message, /ended/);
    assert.match(body.error.message, /Sign in/);
  });

  test('the API without credentials says it needs an API key and how to send it', async () => {
    const response = await forgelink.call(null, 'GET', '/api/v1/connections');
    assert.equal(response.status, 401);
    assert.match(response.json.error.message, /^This API needs an API key: Authorization: Bearer flk_/);
  });

  test('an untrusted certificate on the dashboard: the advice sits by the CA certificate field, in the dashboard\'s words', async () => {
    const client = webClient(forgelink.app);
    const signIn = await client.get('/sign-in');
    assert.equal((await client.post('/sign-in', { _csrf: csrfOf(signIn.text), username: 'alice', password: PASSWORD, next: '/' })).status, 303);
    const page = await client.get('/integrations/gitlab');
    const token = gitlab.addToken(gitlab.addUser({ username: 'bot' }).id, { scopes: ['api'], expiresAt: '2027-01-01' });
    const form = new FormData();
    form.set('_csrf', csrfOf(page.text));
    form.set('baseUrl', gitlab.baseUrl);
    form.set('token', token);
    form.set('caPem', '');
    form.set('label', 'no ca');
    const refused = await client.post('/integrations/gitlab/connections', form);
    assert.equal(refused.status, 400);
    assert.doesNotMatch(refused.text, /--ca-file/);
    const caError = /id="caPem-error"[^>]*>(?:<span[^>]*>[^<]*<\/span>)?([^<]*)</.exec(refused.text);
    assert.ok(caError, 'the error is shown by the CA certificate field');
    assert.match(caError[1] as string, /CA certificate/);

    // Reloading the address the form posted to (or opening it) lands on the form's page, not a 404.
    const reloaded = await client.get('/integrations/gitlab/connections');
    assert.equal(reloaded.status, 302);
    assert.equal(reloaded.location, '/integrations/gitlab');
    assert.equal((await client.get('/integrations/gitlab/connections/con_x/doctor')).status, 302);
  });
});
