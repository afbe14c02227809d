import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

describe('connections API against the fake GitLab over HTTPS under a subpath', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let gitlabUserId: number;
  const secrets: string[] = [];

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
    gitlabUserId = gitlab.addUser({ username: 'cospec-bot', name: 'Cospec Bot' }).id;
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  function token(scopes: string[], extra: { expiresAt?: string | null; revoked?: boolean } = {}): string {
    const value = gitlab.addToken(gitlabUserId, { scopes, expiresAt: '2027-06-30', ...extra });
    secrets.push(value);
    return value;
  }

  function connect(user: TestUser, body: Record<string, unknown>) {
    return forgelink.call(user, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, ...body });
  }

  test('requires an API key', async () => {
    const missing = await forgelink.call(null, 'GET', '/api/v1/connections');
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error.code, 'unauthenticated');
    // Where to get a key, in terms a user without a CLI account can act on (the dashboard's API keys page).
    assert.match(missing.json.error.message, /Bearer flk_.*API keys page, \/settings\/keys/);
    const wrong = await forgelink.call({ id: 'x', name: 'x', apiKey: 'flk_wrong' }, 'GET', '/api/v1/connections');
    assert.equal(wrong.status, 401);
    assert.match(wrong.json.error.message, /^The API key is not valid: it was revoked, or not copied whole\. .*\/settings\/keys/);
  });

  test('connects a token with repository scopes and says what an agent can do', async () => {
    const response = await connect(alice, {
      token: token(['read_repository', 'write_repository', 'read_user']),
      baseUrl: `${gitlab.baseUrl}/api/v4/`,
      label: 'work bot',
    });
    assert.equal(response.status, 201, response.text);
    const connection = response.json;
    assert.match(connection.id, /^con_/);
    assert.equal(connection.baseUrl, gitlab.baseUrl);
    assert.equal(connection.host, new URL(gitlab.baseUrl).host);
    assert.equal(connection.kind, 'pat');
    assert.equal(connection.label, 'work bot');
    assert.deepEqual(connection.account, { id: gitlabUserId, username: 'cospec-bot', name: 'Cospec Bot' });
    assert.deepEqual(connection.scopes, ['read_repository', 'write_repository', 'read_user']);
    assert.equal(connection.expiresAt, '2027-06-30');
    assert.equal(connection.status, 'active');
    assert.equal(connection.hasCustomCa, true);
    assert.equal(connection.instanceVersion, '18.1.1-ee');
    assert.deepEqual(connection.capabilities, {
      clone: true,
      push: true,
      mergeRequestsViaApi: false,
      mergeRequestsViaPushOptions: true,
      issues: false,
      readUser: true,
    });
    assert.deepEqual(
      connection.warnings.map((w: { code: string }) => w.code),
      ['cannot_file_issues'],
    );

    const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${connection.id}`);
    assert.equal(shown.status, 200);
    assert.deepEqual(shown.json, connection);
  });

  test('a token without expiry is accepted with the no_expiry warning; api is flagged broad', async () => {
    const response = await connect(alice, { token: token(['api'], { expiresAt: null }) });
    assert.equal(response.status, 201, response.text);
    assert.deepEqual(
      response.json.warnings.map((w: { code: string }) => w.code),
      ['no_expiry', 'broad_scope'],
    );
    assert.equal(response.json.label, new URL(gitlab.baseUrl).host);
  });

  test('a token that can only push has no account, and says so', async () => {
    const response = await connect(alice, { token: token(['read_repository', 'write_repository']) });
    assert.equal(response.status, 201, response.text);
    assert.equal(response.json.account, null);
    assert.ok(response.json.warnings.some((w: { code: string }) => w.code === 'cannot_read_user'));
  });

  test('several connections per user, two on one host, listed only for their owner', async () => {
    const list = await forgelink.call(alice, 'GET', '/api/v1/connections');
    assert.equal(list.status, 200);
    assert.equal(list.json.connections.length, 3);
    assert.equal(new Set(list.json.connections.map((c: { host: string }) => c.host)).size, 1);
    const bobs = await forgelink.call(bob, 'GET', '/api/v1/connections');
    assert.deepEqual(bobs.json.connections, []);
  });

  test("another user's connection is 404 for every verb, never 403", async () => {
    const [first] = (await forgelink.call(alice, 'GET', '/api/v1/connections')).json.connections;
    for (const [method, path] of [
      ['GET', `/api/v1/connections/${first.id}`],
      ['POST', `/api/v1/connections/${first.id}/check`],
      ['GET', `/api/v1/connections/${first.id}/projects`],
      ['DELETE', `/api/v1/connections/${first.id}`],
    ] as const) {
      const response = await forgelink.call(bob, method, path);
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.equal(response.json.error.code, 'connection_not_found');
    }
    assert.equal((await forgelink.call(alice, 'GET', `/api/v1/connections/${first.id}`)).status, 200);
  });

  test('lists projects with Developer access or more, across pages, nested subgroups included', async () => {
    const owner = gitlab.addUser({ username: 'proj-owner' });
    for (let i = 0; i < 130; i += 1) {
      gitlab.addProject({ path: `group/sub${i % 3}/app-${i}`, members: [{ userId: gitlabUserId, accessLevel: 30 }] });
    }
    gitlab.addProject({ path: 'group/reporter-only', members: [{ userId: gitlabUserId, accessLevel: 20 }] });
    gitlab.addProject({ path: 'group/old', archived: true, members: [{ userId: gitlabUserId, accessLevel: 40 }] });
    gitlab.addProject({ path: 'other/private', members: [{ userId: owner.id, accessLevel: 50 }] });
    const created = await connect(alice, { token: token(['read_api', 'read_repository']) });
    assert.equal(created.status, 201, created.text);

    const response = await forgelink.call(alice, 'GET', `/api/v1/connections/${created.json.id}/projects`);
    assert.equal(response.status, 200, response.text);
    const paths: string[] = response.json.projects.map((p: { pathWithNamespace: string }) => p.pathWithNamespace);
    assert.equal(paths.length, 130);
    assert.equal(new Set(paths).size, 130);
    assert.ok(paths.includes('group/sub2/app-128'));
    assert.ok(!paths.includes('group/reporter-only') && !paths.includes('group/old') && !paths.includes('other/private'));
    const sample = response.json.projects[0];
    assert.equal(sample.defaultBranch, 'main');
    assert.ok(sample.httpUrlToRepo.startsWith(`${gitlab.baseUrl}/`), sample.httpUrlToRepo);
    assert.ok(sample.webUrl.startsWith(`${gitlab.baseUrl}/`), sample.webUrl);

    const searched = await forgelink.call(alice, 'GET', `/api/v1/connections/${created.json.id}/projects?search=app-12`);
    assert.deepEqual(
      searched.json.projects.map((p: { pathWithNamespace: string }) => p.pathWithNamespace).sort(),
      ['group/sub0/app-12', 'group/sub0/app-120', 'group/sub1/app-121', 'group/sub1/app-124', 'group/sub1/app-127', 'group/sub2/app-122', 'group/sub2/app-125', 'group/sub2/app-128', 'group/sub0/app-123', 'group/sub0/app-126', 'group/sub0/app-129'].sort(),
    );
  });

  test('a token that cannot list projects gets a 403 that says which scope is missing', async () => {
    const created = await connect(alice, { token: token(['read_repository', 'write_repository']) });
    const response = await forgelink.call(alice, 'GET', `/api/v1/connections/${created.json.id}/projects`);
    assert.equal(response.status, 403);
    assert.equal(response.json.error.code, 'insufficient_scope');
    assert.match(response.json.error.message, /read_api or api/);
  });

  test('check notices a token revoked at GitLab; disconnect deletes the sealed token', async () => {
    const value = token(['api']);
    const created = await connect(alice, { token: value });
    const id = created.json.id;
    gitlab.revokeToken(value);
    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
    assert.equal(checked.status, 200);
    assert.equal(checked.json.status, 'revoked');
    assert.match(checked.json.statusReason, /revoked/);

    assert.notEqual(await forgelink.storage.connections.getSecret(alice.id, id, 'token'), null);
    const deleted = await forgelink.call(alice, 'DELETE', `/api/v1/connections/${id}`);
    assert.equal(deleted.status, 204);
    assert.equal(await forgelink.storage.connections.getSecret(alice.id, id, 'token'), null);
    const rows = await forgelink.storage.db.selectFrom('secrets').select('id').where('connection_id', '=', id).execute();
    assert.deepEqual(rows, []);
    assert.equal((await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`)).status, 404);
    assert.equal((await forgelink.call(alice, 'DELETE', `/api/v1/connections/${id}`)).status, 404);
  });

  test('check of an expired token marks it expired', async () => {
    const value = token(['read_repository', 'write_repository']);
    const created = await connect(alice, { token: value });
    gitlab.expireToken(value);
    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${created.json.id}/check`);
    assert.equal(checked.json.status, 'expired');
  });

  test('no token value appears in any response or log line', async () => {
    const list = await forgelink.call(alice, 'GET', '/api/v1/connections');
    const everything = `${list.text}\n${forgelink.logs.join('')}`;
    assert.ok(secrets.length > 5);
    for (const secret of secrets) assert.ok(!everything.includes(secret), 'a token leaked');
  });
});
