import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/server/web/index.ts';
import { ErrorResponse, SecretResponse } from '../../src/server/schemas.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { csrfOf, webClient } from '../web/client.ts';

const VALUE = 'sk-ant-api03-only-in-this-test-9f8e7d6c5b4a';
const OTHER_VALUE = 'sk-proj-bob-only-in-this-test-1a2b3c4d';
const PASSWORD = 'a long dashboard password';

describe('secrets over the API and the dashboard (in-process)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  /** Every response body, to be searched for values at the end. */
  const bodies: string[] = [];

  async function call(user: TestUser | null, method: string, path: string, body?: unknown) {
    const response = await forgelink.call(user, method, path, body);
    bodies.push(response.text);
    return response;
  }

  before(async () => {
    gitlab = await startFakeGitLab();
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  test('PUT creates (201) then replaces (200); GET lists name, hosts and times, never the value', async () => {
    const created = await call(alice, 'PUT', '/api/v1/secrets/ANTHROPIC_API_KEY', { value: VALUE, hosts: ['api.anthropic.com', 'https://llm.example.com:8443/'] });
    assert.equal(created.status, 201, created.text);
    SecretResponse.strict().parse(created.json);
    assert.deepEqual(created.json.hosts, ['api.anthropic.com:443', 'llm.example.com:8443']);
    assert.equal(created.json.lastUsedAt, null);

    const replaced = await call(alice, 'PUT', '/api/v1/secrets/ANTHROPIC_API_KEY', { value: `${VALUE}-rotated` });
    assert.equal(replaced.status, 200, replaced.text);
    assert.deepEqual(replaced.json.hosts, ['api.anthropic.com:443', 'llm.example.com:8443'], 'hosts absent: kept');
    assert.equal(replaced.json.createdAt, created.json.createdAt);

    const list = await call(alice, 'GET', '/api/v1/secrets');
    assert.equal(list.status, 200);
    assert.deepEqual(Object.keys(list.json), ['secrets']);
    assert.equal(list.json.secrets.length, 1);
    for (const secret of list.json.secrets) SecretResponse.strict().parse(secret);
    assert.deepEqual(Object.keys(list.json.secrets[0]).sort(), ['createdAt', 'hosts', 'lastUsedAt', 'name', 'updatedAt']);
  });

  test("another user's secret is a 404 and never listed; the same name is theirs to set", async () => {
    const alicesBefore = (await call(alice, 'GET', '/api/v1/secrets')).json;
    assert.deepEqual((await call(bob, 'GET', '/api/v1/secrets')).json, { secrets: [] });
    const deleted = await call(bob, 'DELETE', '/api/v1/secrets/ANTHROPIC_API_KEY');
    assert.equal(deleted.status, 404);
    ErrorResponse.strict().parse(deleted.json);
    assert.equal(deleted.json.error.code, 'secret_not_found');
    const own = await call(bob, 'PUT', '/api/v1/secrets/ANTHROPIC_API_KEY', { value: OTHER_VALUE });
    assert.equal(own.status, 201);
    assert.equal((await call(bob, 'DELETE', '/api/v1/secrets/ANTHROPIC_API_KEY')).status, 204);
    assert.deepEqual((await call(alice, 'GET', '/api/v1/secrets')).json, alicesBefore, "alice's secret is untouched");
    assert.equal((await call(null, 'GET', '/api/v1/secrets')).status, 401);
  });

  test('bad names, values and hosts are 400s naming the field, and nothing is stored', async () => {
    const cases: [string, unknown, string, RegExp][] = [
      ['PATH', { value: VALUE }, 'name', /reserved/],
      ['GITLAB_TOKEN', { value: VALUE }, 'name', /GITLAB_\*/],
      ['http_proxy', { value: VALUE }, 'name', /reserved/],
      ['LD_PRELOAD', { value: VALUE }, 'name', /LD_\*/],
      ['lower_case', { value: VALUE }, 'name', /upper-case \(LOWER_CASE\)/],
      ['9LIVES', { value: VALUE }, 'name', /environment variable name/],
      ['GOOD_NAME', {}, 'value', /"value" is required/],
      ['GOOD_NAME', { value: 42 }, 'value', /value/],
      ['GOOD_NAME', { value: '' }, 'value', /is empty/],
      ['GOOD_NAME', { value: 'short' }, 'value', /shorter than 8/],
      ['GOOD_NAME', { value: `${VALUE}\0` }, 'value', /NUL/],
      ['GOOD_NAME', { value: 'x'.repeat(64 * 1024 + 1) }, 'value', /64 KiB/],
      ['GOOD_NAME', { value: VALUE, hosts: ['not a host'] }, 'hosts', /not a host/],
      ['GOOD_NAME', { value: VALUE, hosts: ['*.example.com'] }, 'hosts', /not a host/],
    ];
    for (const [name, body, field, pattern] of cases) {
      const response = await call(alice, 'PUT', `/api/v1/secrets/${encodeURIComponent(name)}`, body);
      assert.equal(response.status, 400, `${name} ${JSON.stringify(body).slice(0, 60)}: ${response.text}`);
      assert.equal(response.json.error.field, field, response.text);
      assert.match(response.json.error.message, pattern);
      assert.ok(!response.text.includes(VALUE), 'a refusal repeats the value');
    }
    assert.deepEqual((await call(alice, 'GET', '/api/v1/secrets')).json.secrets.map((s: { name: string }) => s.name), ['ANTHROPIC_API_KEY']);
  });

  test('a run naming a secret the user has not set is refused before it is queued, saying how to set it', async () => {
    const bot = gitlab.addUser({ username: 'bot' }).id;
    gitlab.addProject({ path: 'g/app', members: [{ userId: bot, accessLevel: 30 }] });
    const connection = await call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, token: gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-01-01' }) });
    assert.equal(connection.status, 201, connection.text);
    const body = { connectionId: connection.json.id, project: 'g/app', command: ['true'] };

    const missing = await call(alice, 'POST', '/api/v1/runs', { ...body, secrets: ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY'] });
    assert.equal(missing.status, 400, missing.text);
    assert.equal(missing.json.error.code, 'secret_not_found');
    assert.equal(missing.json.error.field, 'secrets');
    assert.match(missing.json.error.message, /OPENAI_API_KEY/);
    assert.match(missing.json.error.message, /forgelink secrets set OPENAI_API_KEY/);
    // Bob's secret of the same name does not count for alice, and alice's does not for bob.
    assert.equal((await call(bob, 'PUT', '/api/v1/secrets/OPENAI_API_KEY', { value: OTHER_VALUE })).status, 201);
    assert.equal((await call(alice, 'POST', '/api/v1/runs', { ...body, secrets: ['OPENAI_API_KEY'] })).status, 400);
    const badName = await call(alice, 'POST', '/api/v1/runs', { ...body, secrets: ['LD_PRELOAD'] });
    assert.equal(badName.status, 400);
    assert.equal(badName.json.error.field, 'secrets');
    assert.deepEqual((await call(alice, 'GET', '/api/v1/runs')).json.runs, [], 'nothing was queued');

    const queued = await call(alice, 'POST', '/api/v1/runs', { ...body, secrets: ['ANTHROPIC_API_KEY', 'ANTHROPIC_API_KEY'] });
    assert.equal(queued.status, 201, queued.text);
    assert.deepEqual(queued.json.secrets, ['ANTHROPIC_API_KEY']);
    await forgelink.runs.idle();
    const finished = await call(alice, 'GET', `/api/v1/runs/${queued.json.id}`);
    assert.deepEqual(finished.json.secrets, ['ANTHROPIC_API_KEY']);
  });

  test('the OpenAPI document describes /secrets', async () => {
    const doc = (await call(null, 'GET', '/api/v1/openapi.json')).json;
    assert.ok(doc.paths['/secrets'].get);
    assert.ok(doc.paths['/secrets/{name}'].put.responses['201']);
    assert.ok(doc.paths['/secrets/{name}'].delete.responses['204']);
    assert.deepEqual(doc.components.schemas.PutSecretRequest.required, ['value']);
    assert.ok(doc.components.schemas.StartRunRequest.properties.secrets);
  });

  test('Settings → Secrets: list, set with a password field, delete with confirmation, CSRF required', async () => {
    const client = webClient(forgelink.app);
    await forgelink.storage.users.setPasswordHash(alice.id, await hashPassword(PASSWORD));
    const signIn = await client.get('/sign-in');
    assert.equal((await client.post('/sign-in', { _csrf: csrfOf(signIn.text), username: 'alice', password: PASSWORD, next: '/' })).status, 303);

    const page = await client.get('/settings/secrets');
    assert.equal(page.status, 200);
    assert.match(page.text, /href="\/settings\/secrets" aria-current="page"/);
    assert.match(page.text, /<code>ANTHROPIC_API_KEY<\/code>/);
    assert.match(page.text, /api\.anthropic\.com:443/);
    assert.match(page.text, /<input id="value" name="value" type="password"/);
    assert.match(page.text, /<details class="confirm">/);
    const csrf = csrfOf(page.text);

    assert.equal((await client.post('/settings/secrets', { name: 'NPM_TOKEN', value: 'npm_abcdefgh12345' })).status, 403, 'no CSRF token');
    const refused = await client.post('/settings/secrets', { _csrf: csrf, name: 'HOME', value: 'npm_abcdefgh12345', hosts: '' });
    assert.equal(refused.status, 400);
    assert.match(refused.text, /id="name-error"[^>]*>.*reserved/s);
    assert.ok(!refused.text.includes('npm_abcdefgh12345'), 'the value is never put back into the form');

    const saved = await client.post('/settings/secrets', { _csrf: csrf, name: 'NPM_TOKEN', value: 'npm_abcdefgh12345', hosts: 'registry.npmjs.org, npm.example.com:8443' });
    assert.equal(saved.status, 303);
    const after = await client.get(saved.location as string);
    assert.match(after.text, /Saved NPM_TOKEN/);
    assert.match(after.text, /registry\.npmjs\.org:443, npm\.example\.com:8443/);
    assert.ok(!after.text.includes('npm_abcdefgh12345'));

    assert.equal((await client.post('/settings/secrets/NPM_TOKEN/delete', {})).status, 403, 'no CSRF token');
    const deleted = await client.post('/settings/secrets/NPM_TOKEN/delete', { _csrf: csrf });
    assert.equal(deleted.status, 303);
    assert.match((await client.get(deleted.location as string)).text, /Deleted NPM_TOKEN/);
    assert.deepEqual((await call(alice, 'GET', '/api/v1/secrets')).json.secrets.map((s: { name: string }) => s.name), ['ANTHROPIC_API_KEY']);
  });

  test('no value appears in any response, the server log or a database row', async () => {
    const haystacks: [string, string][] = [
      ['responses', bodies.join('\n')],
      ['server log', forgelink.logs.join('')],
      ['audit', JSON.stringify(await forgelink.storage.audit.list({ ownerId: null, limit: 1000 }))],
    ];
    for (const table of ['user_secrets', 'runs', 'run_logs', 'audit_events'] as const) {
      haystacks.push([table, JSON.stringify(await forgelink.storage.db.selectFrom(table).selectAll().execute())]);
    }
    for (const value of [VALUE, `${VALUE}-rotated`, OTHER_VALUE, 'npm_abcdefgh12345']) {
      for (const [where, text] of haystacks) assert.ok(!text.includes(value), `a value found in ${where}`);
    }
    const actions = (await forgelink.storage.audit.list({ ownerId: alice.id, limit: 1000 })).map((entry) => entry.action);
    assert.ok(actions.includes('secret.set') && actions.includes('secret.deleted') && actions.includes('secret.decrypted'), actions.join(','));
  });
});
