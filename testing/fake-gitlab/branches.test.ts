import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab, type FakeProject } from './index.ts';
import { clientFor, parseLinks } from './test-support.ts';

type Json = Record<string, unknown>;
const INSUFFICIENT = 'The request requires higher privileges than provided by the access token.';

describe('fake GitLab branches and protected branches (REST, read from the repository)', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let project: FakeProject;
  const auth: Record<string, Record<string, string>> = {};

  before(async () => {
    gl = await startFakeGitLab();
    client = clientFor(gl);
    const dev = gl.addUser({ username: 'dev' }).id;
    const reporter = gl.addUser({ username: 'reporter' }).id;
    const guest = gl.addUser({ username: 'guest' }).id;
    project = gl.addProject({
      path: 'team/app',
      branches: ['stable'],
      members: [
        { userId: dev, accessLevel: 30 },
        { userId: reporter, accessLevel: 20 },
        { userId: guest, accessLevel: 10 },
      ],
    });
    gl.protectBranch(project.id, 'release/*', { pushAccessLevel: 30, mergeAccessLevel: 40, allowForcePush: true });
    await gl.commitFile(project.id, {
      branch: 'feature/a',
      path: 'a.txt',
      content: 'a\n',
      message: 'Add a\n\nWith a body.',
      authorName: 'Ada',
      authorEmail: 'ada@example.com',
    });
    await gl.commitFile(project.id, { branch: 'release/1.0', path: 'r.txt', content: 'r\n' });
    auth.dev = { 'PRIVATE-TOKEN': gl.addToken(dev, { scopes: ['read_api'] }) };
    auth.devGit = { 'PRIVATE-TOKEN': gl.addToken(dev, { scopes: ['write_repository'] }) };
    auth.reporter = { 'PRIVATE-TOKEN': gl.addToken(reporter, { scopes: ['api'] }) };
    auth.guest = { 'PRIVATE-TOKEN': gl.addToken(guest, { scopes: ['api'] }) };
  });
  after(async () => {
    await client.close();
    await gl.close();
  });

  const base = () => `/api/v4/projects/${project.id}`;

  test('gl.branches and the API agree; names are sorted', async () => {
    const response = await client.get(`${base()}/repository/branches`, auth.dev);
    assert.equal(response.status, 200);
    const body = (await response.json()) as Json[];
    assert.deepEqual(body.map((b) => b.name), ['feature/a', 'main', 'release/1.0', 'stable']);
    assert.deepEqual(
      body.map((b) => [b.name, (b.commit as Json).id]),
      gl.branches(project.id).map((b) => [b.name, b.sha]),
    );
  });

  test('a branch carries GitLab\'s fields and its head commit', async () => {
    const response = await client.get(`${base()}/repository/branches/feature%2Fa`, auth.dev);
    assert.equal(response.status, 200);
    const body = (await response.json()) as Json;
    const sha = gl.branches(project.id).find((b) => b.name === 'feature/a')?.sha ?? '';
    const main = gl.branches(project.id).find((b) => b.name === 'main')?.sha ?? '';
    const commit = body.commit as Json;
    assert.deepEqual(
      { ...body, commit: undefined },
      {
        name: 'feature/a',
        commit: undefined,
        merged: false,
        protected: false,
        developers_can_push: false,
        developers_can_merge: false,
        can_push: true,
        default: false,
        web_url: `${gl.baseUrl}/team/app/-/tree/feature/a`,
      },
    );
    assert.equal(commit.id, sha);
    assert.equal(commit.short_id, sha.slice(0, 8));
    assert.deepEqual(commit.parent_ids, [main]);
    assert.equal(commit.title, 'Add a');
    assert.equal(commit.message, 'Add a\n\nWith a body.\n');
    assert.equal(commit.author_name, 'Ada');
    assert.equal(commit.author_email, 'ada@example.com');
    assert.match(String(commit.created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000[+-]\d\d:\d\d$/);
    assert.equal(commit.web_url, `${gl.baseUrl}/team/app/-/commit/${sha}`);
  });

  test('protected, default, merged and can_push follow the rules and the viewer', async () => {
    const get = async (name: string, headers = auth.dev) =>
      (await (await client.get(`${base()}/repository/branches/${encodeURIComponent(name)}`, headers)).json()) as Json;
    const main = await get('main');
    assert.equal(main.protected, true);
    assert.equal(main.default, true);
    assert.equal(main.can_push, false, 'Developers cannot push to main');
    assert.equal(main.merged, false);
    const stable = await get('stable');
    assert.equal(stable.merged, true, 'stable points at a commit main contains');
    const release = await get('release/1.0');
    assert.equal(release.protected, true);
    assert.equal(release.developers_can_push, true);
    assert.equal(release.developers_can_merge, false);
    assert.equal(release.can_push, true);
    assert.equal((await get('feature/a', auth.reporter)).can_push, false, 'Reporters cannot push');
  });

  test('search anchors with ^ and $; paging; an unknown branch is 404 Branch Not Found', async () => {
    const names = async (query: string) =>
      ((await (await client.get(`${base()}/repository/branches?${query}`, auth.dev)).json()) as Json[]).map((b) => b.name);
    assert.deepEqual(await names('search=^release'), ['release/1.0']);
    assert.deepEqual(await names('search=A$'), ['feature/a']);
    assert.deepEqual(await names('search=TAB'), ['stable']);
    const paged = await client.get(`${base()}/repository/branches?per_page=3`, auth.dev);
    assert.equal(((await paged.json()) as Json[]).length, 3);
    assert.equal(paged.headers.get('x-total'), '4');
    assert.ok(parseLinks(paged.headers.get('link')).next?.startsWith(`${gl.baseUrl}/api/v4/projects/${project.id}/repository/branches?`));
    const missing = await client.get(`${base()}/repository/branches/nope`, auth.dev);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { message: '404 Branch Not Found' });
  });

  test('GET /protected_branches lists rules with GitLab\'s fields', async () => {
    const response = await client.get(`${base()}/protected_branches`, auth.dev);
    assert.equal(response.status, 200);
    const body = (await response.json()) as Json[];
    const withoutIds = body.map((rule) => ({
      ...rule,
      id: typeof rule.id,
      push_access_levels: (rule.push_access_levels as Json[]).map((l) => ({ ...l, id: typeof l.id })),
      merge_access_levels: (rule.merge_access_levels as Json[]).map((l) => ({ ...l, id: typeof l.id })),
    }));
    assert.deepEqual(withoutIds, [
      {
        id: 'number',
        name: 'main',
        push_access_levels: [
          { id: 'number', access_level: 40, access_level_description: 'Maintainers', user_id: null, group_id: null, deploy_key_id: null },
        ],
        merge_access_levels: [{ id: 'number', access_level: 40, access_level_description: 'Maintainers', user_id: null, group_id: null }],
        allow_force_push: false,
        code_owner_approval_required: false,
      },
      {
        id: 'number',
        name: 'release/*',
        push_access_levels: [
          { id: 'number', access_level: 30, access_level_description: 'Developers + Maintainers', user_id: null, group_id: null, deploy_key_id: null },
        ],
        merge_access_levels: [{ id: 'number', access_level: 40, access_level_description: 'Maintainers', user_id: null, group_id: null }],
        allow_force_push: true,
        code_owner_approval_required: false,
      },
    ]);
    const single = await client.get(`${base()}/protected_branches/release%2F*`, auth.dev);
    assert.equal(((await single.json()) as Json).name, 'release/*');
    const missing = await client.get(`${base()}/protected_branches/stable`, auth.dev);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { message: '404 Not found' });
  });

  test('a project without default branch protection lists none; unprotectBranch removes a rule', async () => {
    const open = gl.addProject({ path: 'team/open', protectDefaultBranch: false, members: [{ userId: 1, accessLevel: 30 }] });
    const response = await client.get(`/api/v4/projects/${open.id}/protected_branches`, auth.dev);
    assert.deepEqual(await response.json(), []);
    gl.protectBranch(open.id, 'main');
    gl.unprotectBranch(open.id, 'main');
    assert.deepEqual(open.protectedBranches, []);
  });

  test('reading code needs Reporter in a private project and api or read_api', async () => {
    const guest = await client.get(`${base()}/repository/branches`, auth.guest);
    assert.equal(guest.status, 403);
    assert.deepEqual(await guest.json(), { message: '403 Forbidden' });
    const reporter = await client.get(`${base()}/protected_branches`, auth.reporter);
    assert.equal(reporter.status, 200);
    for (const path of ['/repository/branches', '/repository/branches/main', '/protected_branches']) {
      const response = await client.get(`${base()}${path}`, auth.devGit);
      assert.equal(response.status, 403, path);
      assert.deepEqual(await response.json(), { error: 'insufficient_scope', error_description: INSUFFICIENT, scope: 'api read_api' });
    }
  });
});
