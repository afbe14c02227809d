import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab, type FakeProject } from './index.ts';
import { clientFor } from './test-support.ts';

type Json = Record<string, unknown>;
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const INSUFFICIENT = 'The request requires higher privileges than provided by the access token.';

describe('fake GitLab merge requests and issues (REST)', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let project: FakeProject;
  let dev: number;
  let other: number;
  const auth: Record<string, Record<string, string>> = {};

  before(async () => {
    gl = await startFakeGitLab({ basePath: '/gitlab' });
    client = clientFor(gl);
    dev = gl.addUser({ username: 'dev', name: 'Dev Eloper' }).id;
    other = gl.addUser({ username: 'other' }).id;
    const reporter = gl.addUser({ username: 'reporter' }).id;
    const guest = gl.addUser({ username: 'guest' }).id;
    const outsider = gl.addUser({ username: 'outsider' }).id;
    project = gl.addProject({
      path: 'team/app',
      members: [
        { userId: dev, accessLevel: 30 },
        { userId: other, accessLevel: 30 },
        { userId: reporter, accessLevel: 20 },
        { userId: guest, accessLevel: 10 },
      ],
    });
    const header = (userId: number, scopes: string[]) => ({ 'PRIVATE-TOKEN': gl.addToken(userId, { scopes }) });
    auth.dev = header(dev, ['api']);
    auth.other = header(other, ['api']);
    auth.devReadApi = header(dev, ['read_api']);
    auth.devGit = header(dev, ['read_repository', 'write_repository']);
    auth.reporter = header(reporter, ['api']);
    auth.guest = header(guest, ['api']);
    auth.outsider = header(outsider, ['api']);
    for (const branch of ['feature-a', 'feature-b', 'feature-c']) {
      await gl.commitFile(project.id, { branch, path: `${branch}.txt`, content: `${branch}\n`, message: `Add ${branch}` });
    }
  });
  after(async () => {
    await client.close();
    await gl.close();
  });

  const mrPath = () => `/api/v4/projects/${project.id}/merge_requests`;
  const issuePath = () => `/api/v4/projects/team%2Fapp/issues`;

  async function createMr(body: Json, headers = auth.dev): Promise<{ status: number; body: Json }> {
    const response = await client.post(mrPath(), body, headers);
    return { status: response.status, body: (await response.json()) as Json };
  }

  test('POST /merge_requests answers 201 with GitLab\'s fields', async () => {
    const { status, body } = await createMr({
      source_branch: 'feature-a',
      target_branch: 'main',
      title: 'Add feature A',
      description: 'Adds A.',
      labels: 'agent,bot',
      remove_source_branch: true,
      squash: true,
    });
    assert.equal(status, 201, JSON.stringify(body));
    const head = gl.branches(project.id).find((b) => b.name === 'feature-a')?.sha;
    const main = gl.branches(project.id).find((b) => b.name === 'main')?.sha;
    assert.equal(typeof body.id, 'number');
    assert.equal(body.iid, 1);
    assert.equal(body.project_id, project.id);
    assert.equal(body.title, 'Add feature A');
    assert.equal(body.description, 'Adds A.');
    assert.equal(body.state, 'opened');
    assert.match(String(body.created_at), ISO_MS);
    assert.match(String(body.updated_at), ISO_MS);
    assert.equal(body.source_branch, 'feature-a');
    assert.equal(body.target_branch, 'main');
    assert.equal(body.source_project_id, project.id);
    assert.equal(body.target_project_id, project.id);
    assert.deepEqual(body.author, {
      id: dev,
      username: 'dev',
      name: 'Dev Eloper',
      state: 'active',
      locked: false,
      avatar_url: null,
      web_url: `${gl.baseUrl}/dev`,
    });
    assert.deepEqual(body.labels, ['agent', 'bot']);
    assert.equal(body.draft, false);
    assert.equal(body.work_in_progress, false);
    assert.equal(body.merge_status, 'can_be_merged');
    assert.equal(body.sha, head);
    assert.deepEqual(body.diff_refs, { base_sha: main, head_sha: head, start_sha: main });
    assert.equal(body.changes_count, '1');
    assert.equal(body.force_remove_source_branch, true);
    assert.equal(body.squash, true);
    assert.equal(body.reference, '!1');
    assert.deepEqual(body.references, { short: '!1', relative: '!1', full: 'team/app!1' });
    assert.equal(body.web_url, `${gl.baseUrl}/team/app/-/merge_requests/1`);
    assert.equal(body.subscribed, true);
    assert.deepEqual(body.user, { can_merge: false }, 'main is protected at Maintainer');
  });

  test('a second open merge request for the same branches is 409 with GitLab\'s message', async () => {
    const { status, body } = await createMr({ source_branch: 'feature-a', target_branch: 'main', title: 'Again' });
    assert.equal(status, 409);
    assert.deepEqual(body, { message: ['Another open merge request already exists for this source branch: !1'] });
    assert.equal(gl.mergeRequests(project.id).length, 1);
  });

  test('a missing source branch is 400 source_branch does not exist', async () => {
    const { status, body } = await createMr({ source_branch: 'no-such-branch', target_branch: 'main', title: 'X' });
    assert.equal(status, 400);
    assert.deepEqual(body, { message: { source_branch: ['does not exist'] } });
  });

  test('injectSourceBranchLag refuses the next creations as GitLab does right after a push', async () => {
    gl.injectSourceBranchLag(1);
    const first = await createMr({ source_branch: 'feature-b', target_branch: 'main', title: 'B' });
    assert.equal(first.status, 400);
    assert.deepEqual(first.body, { message: { source_branch: ['does not exist'] } });
    const retried = await createMr({ source_branch: 'feature-b', target_branch: 'main', title: 'Draft: B' });
    assert.equal(retried.status, 201);
    assert.equal(retried.body.iid, 2);
    assert.equal(retried.body.draft, true);
  });

  test('missing parameters are Grape errors; same branches are 422; a blank title is a validation error', async () => {
    assert.deepEqual(await createMr({ source_branch: 'feature-c', target_branch: 'main' }), {
      status: 400,
      body: { error: 'title is missing' },
    });
    assert.deepEqual(await createMr({}), {
      status: 400,
      body: { error: 'title is missing, source_branch is missing, target_branch is missing' },
    });
    assert.deepEqual(await createMr({ source_branch: 'main', target_branch: 'main', title: 'Same' }), {
      status: 422,
      body: { message: ["You can't use same project/branch for source and target"] },
    });
    assert.deepEqual(await createMr({ source_branch: 'feature-c', target_branch: 'main', title: ' ' }), {
      status: 400,
      body: { message: { title: ["can't be blank"] } },
    });
    assert.deepEqual(await createMr({ source_branch: 'feature-c', target_branch: 'main', title: 'C', squash: 'maybe' }), {
      status: 400,
      body: { error: 'squash is invalid' },
    });
  });

  test('form-encoded bodies work too', async () => {
    const response = await client.post(
      mrPath(),
      new URLSearchParams({ source_branch: 'feature-c', target_branch: 'main', title: 'C by form' }).toString(),
      { ...auth.other, 'Content-Type': 'application/x-www-form-urlencoded' },
    );
    assert.equal(response.status, 201);
    const body = (await response.json()) as Json;
    assert.equal(body.iid, 3);
    assert.equal((body.author as Json).id, other);
  });

  test('GET /merge_requests filters by author_id, created_after, state and source_branch, and pages', async () => {
    const [first, , third] = gl.mergeRequests(project.id);
    assert.ok(first && third);
    const list = async (query: string) => {
      const response = await client.get(`${mrPath()}?${query}`, auth.devReadApi);
      assert.equal(response.status, 200);
      return { iids: ((await response.json()) as Json[]).map((m) => m.iid), headers: response.headers };
    };
    assert.deepEqual((await list('')).iids, [3, 2, 1], 'newest first by default');
    assert.deepEqual((await list(`author_id=${dev}&order_by=created_at&sort=asc&scope=all&state=all`)).iids, [1, 2]);
    assert.deepEqual((await list(`author_id=${other}`)).iids, [3]);
    assert.deepEqual((await list('author_username=dev&sort=asc')).iids, [1, 2]);
    assert.deepEqual((await list(`created_after=${encodeURIComponent(third.createdAt)}`)).iids, [3], 'inclusive');
    const later = new Date(Date.parse(third.createdAt) + 1).toISOString();
    assert.deepEqual((await list(`created_after=${encodeURIComponent(later)}`)).iids, []);
    assert.deepEqual((await list('source_branch=feature-b')).iids, [2]);
    assert.deepEqual((await list('state=merged')).iids, []);
    assert.deepEqual((await list('state=opened&labels=agent')).iids, [1]);
    const paged = await list('per_page=1&page=2');
    assert.deepEqual(paged.iids, [2]);
    assert.equal(paged.headers.get('x-total'), '3');
    assert.equal(paged.headers.get('x-next-page'), '3');
    const bad = await client.get(`${mrPath()}?created_after=yesterday-ish`, auth.dev);
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { error: 'created_after is invalid' });
    const badState = await client.get(`${mrPath()}?state=open`, auth.dev);
    assert.deepEqual(await badState.json(), { error: 'state does not have a valid value' });
  });

  test('GET /merge_requests/:iid; an unknown iid is 404 Not found', async () => {
    const response = await client.get(`${mrPath()}/2`, auth.dev);
    assert.equal(response.status, 200);
    const body = (await response.json()) as Json;
    assert.equal(body.title, 'Draft: B');
    assert.equal(body.web_url, `${gl.baseUrl}/team/app/-/merge_requests/2`);
    const missing = await client.get(`${mrPath()}/99`, auth.dev);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { message: '404 Not found' });
  });

  test('POST /issues answers 201; iids count per project and per kind', async () => {
    const response = await client.post(
      issuePath(),
      { title: 'Flaky test', description: 'It fails.', labels: ['bug', 'agent'], confidential: false },
      auth.dev,
    );
    assert.equal(response.status, 201);
    const body = (await response.json()) as Json;
    assert.equal(body.iid, 1, 'issues have their own iid sequence');
    assert.equal(body.project_id, project.id);
    assert.equal(body.title, 'Flaky test');
    assert.equal(body.description, 'It fails.');
    assert.equal(body.state, 'opened');
    assert.deepEqual(body.labels, ['agent', 'bug']);
    assert.equal(body.confidential, false);
    assert.equal(body.type, 'ISSUE');
    assert.equal(body.web_url, `${gl.baseUrl}/team/app/-/issues/1`);
    assert.deepEqual(body.references, { short: '#1', relative: '#1', full: 'team/app#1' });
    assert.equal((body.author as Json).username, 'dev');
    assert.match(String(body.created_at), ISO_MS);
    const missing = await client.post(issuePath(), { description: 'no title' }, auth.dev);
    assert.equal(missing.status, 400);
    assert.deepEqual(await missing.json(), { error: 'title is missing' });

    const otherProject = gl.addProject({ path: 'team/other', members: [{ userId: dev, accessLevel: 30 }] });
    const second = await client.post(`/api/v4/projects/${otherProject.id}/issues`, { title: 'Elsewhere' }, auth.dev);
    const secondBody = (await second.json()) as Json;
    assert.equal(secondBody.iid, 1);
    assert.notEqual(secondBody.id, body.id, 'ids are global');
  });

  test('GET /issues filters by author_id and created_after; confidential issues stay hidden from Guests', async () => {
    await client.post(issuePath(), { title: 'Secret', confidential: true }, auth.other);
    const list = async (query: string, headers = auth.dev) => {
      const response = await client.get(`${issuePath()}?${query}`, headers);
      assert.equal(response.status, 200);
      return ((await response.json()) as Json[]).map((i) => i.title);
    };
    assert.deepEqual(await list(`author_id=${dev}`), ['Flaky test']);
    const [first] = gl.issues(project.id);
    assert.ok(first);
    assert.deepEqual(await list(`created_after=${encodeURIComponent(first.createdAt)}&sort=asc`), ['Flaky test', 'Secret']);
    assert.deepEqual(await list('confidential=true'), ['Secret'], 'Developers see confidential issues');
    assert.deepEqual(await list('', auth.guest), ['Flaky test']);
    const hidden = await client.get(`${issuePath()}/2`, auth.guest);
    assert.equal(hidden.status, 404);
    const single = await client.get(`${issuePath()}/1`, auth.guest);
    assert.equal(((await single.json()) as Json).title, 'Flaky test');
  });

  test('scopes: api writes; read_api reads only; repository scopes cannot use the API', async () => {
    const refusals: Array<[string, () => Promise<Response>, string]> = [
      ['POST merge request with read_api', () => client.post(mrPath(), { source_branch: 'feature-c', target_branch: 'main', title: 'x' }, auth.devReadApi) as Promise<Response>, 'api'],
      ['POST issue with read_api', () => client.post(issuePath(), { title: 'x' }, auth.devReadApi) as Promise<Response>, 'api'],
      ['POST merge request with write_repository', () => client.post(mrPath(), { source_branch: 'feature-c', target_branch: 'main', title: 'x' }, auth.devGit) as Promise<Response>, 'api'],
      ['POST issue with write_repository', () => client.post(issuePath(), { title: 'x' }, auth.devGit) as Promise<Response>, 'api'],
      ['GET merge requests with write_repository', () => client.get(mrPath(), auth.devGit) as Promise<Response>, 'api read_api'],
      ['GET issues with write_repository', () => client.get(issuePath(), auth.devGit) as Promise<Response>, 'api read_api'],
    ];
    for (const [name, send, scope] of refusals) {
      const response = await send();
      assert.equal(response.status, 403, name);
      assert.deepEqual(await response.json(), { error: 'insufficient_scope', error_description: INSUFFICIENT, scope }, name);
    }
    const unauthenticated = await client.post(issuePath(), { title: 'x' });
    assert.equal(unauthenticated.status, 401);
    assert.deepEqual(await unauthenticated.json(), { message: '401 Unauthorized' });
  });

  test('roles: a Reporter may not open merge requests; non-members get 404 for a private project', async () => {
    const reporter = await createMr({ source_branch: 'feature-c', target_branch: 'stable', title: 'x' }, auth.reporter);
    assert.deepEqual(reporter, { status: 403, body: { message: '403 Forbidden' } });
    const guestReads = await client.get(mrPath(), auth.guest);
    assert.equal(guestReads.status, 403, 'Guests do not see merge requests of private projects');
    for (const path of [mrPath(), issuePath()]) {
      const response = await client.get(path, auth.outsider);
      assert.equal(response.status, 404);
      assert.deepEqual(await response.json(), { message: '404 Project Not Found' });
    }
  });
});
