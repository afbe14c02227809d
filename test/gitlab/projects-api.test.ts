import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { UpstreamError, type GitLabClient } from '../../src/core/index.ts';
import { createGitLabClient } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab, type FakeProject } from '../../testing/fake-gitlab/index.ts';
import { startReverseProxy, type ReverseProxy } from '../support/reverse-proxy.ts';
import { LOOPBACK_ALLOWED, noSleepExpected } from './helpers.ts';

function notFoundNaming(words: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof UpstreamError, `expected UpstreamError, got ${String(error)}`);
    assert.equal(error.reason, 'not_found', error.message);
    assert.match(error.message, words);
    return true;
  };
}

describe('GitLabProjectsApi: finding a project', () => {
  let gl: FakeGitLab;
  let proxy: ReverseProxy;
  let token: string;
  let app: FakeProject;
  let client: GitLabClient;
  let viaProxy: GitLabClient;

  before(async () => {
    gl = await startFakeGitLab({ basePath: '/gitlab' });
    proxy = await startReverseProxy(gl.baseUrl, { decodeSlashes: true });
    const alice = gl.addUser({ username: 'alice' }).id;
    const other = gl.addUser({ username: 'other' }).id;
    token = gl.addToken(alice, { scopes: ['api'], expiresAt: '2099-01-01' });
    // More than a page (100) of projects whose path contains the last segment, listed (by id) before the one
    // the fallback looks for, so it must follow the next-page link.
    for (let i = 0; i < 105; i++) {
      gl.addProject({ path: `noise${i}/app`, members: [{ userId: alice, accessLevel: 30 }] });
    }
    app = gl.addProject({ path: 'group/sub/app', members: [{ userId: alice, accessLevel: 30 }] });
    gl.addProject({ path: 'group/sub/app-two', members: [{ userId: alice, accessLevel: 30 }] });
    gl.addProject({ path: 'deep/er/nested/thing', members: [{ userId: alice, accessLevel: 40 }] });
    gl.addProject({ path: 'group/secret', members: [{ userId: other, accessLevel: 50 }] });
    const options = { token, tokenKind: 'pat' as const, policy: LOOPBACK_ALLOWED, sleep: noSleepExpected };
    client = createGitLabClient({ ...options, baseUrl: gl.baseUrl });
    viaProxy = createGitLabClient({ ...options, baseUrl: proxy.baseUrl });
  });
  after(async () => {
    await client.close();
    await viaProxy.close();
    await proxy.close();
    await gl.close();
  });

  function requestsSince(start: number): string[] {
    return gl.requests.slice(start).map((r) => `${r.method} ${r.path}`);
  }

  /** The decoded paths the proxy sent, which match no GitLab route (GitLab's catch-all 404). */
  function unknownRoutes(): string[] {
    return gl.takeUnimplemented().map((r) => `${r.method} ${r.path}`);
  }

  test('by nested path, URL-encoded, in one request', async () => {
    const start = gl.requests.length;
    const project = await client.getProject('group/sub/app');
    assert.deepEqual(project, {
      id: app.id,
      pathWithNamespace: 'group/sub/app',
      defaultBranch: 'main',
      webUrl: `${gl.baseUrl}/group/sub/app`,
      httpUrlToRepo: `${gl.baseUrl}/group/sub/app.git`,
      accessLevel: 30,
      archived: false,
    });
    assert.deepEqual(requestsSince(start), ['GET /api/v4/projects/group%2Fsub%2Fapp']);
  });

  test('by numeric id, as a number or a string of digits', async () => {
    const start = gl.requests.length;
    assert.equal((await client.getProject(app.id)).pathWithNamespace, 'group/sub/app');
    assert.equal((await client.getProject(` ${app.id} `)).pathWithNamespace, 'group/sub/app');
    assert.deepEqual(requestsSince(start), [`GET /api/v4/projects/${app.id}`, `GET /api/v4/projects/${app.id}`]);
  });

  test('a path typed with surrounding slashes or another case is the same project', async () => {
    assert.equal((await client.getProject('/group/sub/app/')).id, app.id);
    assert.equal((await client.getProject('Group/Sub/App')).id, app.id);
  });

  test('a missing path is not_found naming the project', async () => {
    await assert.rejects(client.getProject('group/sub/nope'), notFoundNaming(/"group\/sub\/nope"/));
  });

  test('a missing id is not_found naming the id', async () => {
    await assert.rejects(client.getProject(999_999), notFoundNaming(/id 999999/));
  });

  test('a private project of someone else is not_found, like a missing one', async () => {
    await assert.rejects(client.getProject('group/secret'), notFoundNaming(/"group\/secret"/));
  });

  test('behind a proxy that decodes %2F: falls back to listing, pages, and fetches by id', async () => {
    const start = gl.requests.length;
    const project = await viaProxy.getProject('group/sub/app');
    assert.equal(project.id, app.id);
    assert.equal(project.pathWithNamespace, 'group/sub/app');
    const seen = requestsSince(start);
    assert.equal(seen[0], 'GET /api/v4/projects/group/sub/app', 'the proxy really decoded %2F');
    assert.deepEqual(seen.slice(1, -1), ['GET /api/v4/projects', 'GET /api/v4/projects'], 'two pages of the listing');
    assert.equal(seen.at(-1), `GET /api/v4/projects/${app.id}`);
    const listing = gl.requests[start + 1]!;
    assert.equal(listing.query['search'], 'app');
    assert.equal(listing.query['membership'], 'true');
    assert.equal(listing.query['simple'], 'true');
    assert.deepEqual(unknownRoutes(), ['GET /api/v4/projects/group/sub/app'], 'only the decoded path hit no route');
  });

  test('behind that proxy a deeper path is found too, and a missing one is not_found', async () => {
    assert.equal((await viaProxy.getProject('deep/er/nested/thing')).accessLevel, 40);
    await assert.rejects(viaProxy.getProject('group/sub/nope'), notFoundNaming(/"group\/sub\/nope"/));
    await assert.rejects(viaProxy.getProject('group/secret'), notFoundNaming(/"group\/secret"/));
    assert.deepEqual(unknownRoutes(), [
      'GET /api/v4/projects/deep/er/nested/thing',
      'GET /api/v4/projects/group/sub/nope',
      'GET /api/v4/projects/group/secret',
    ]);
  });

  test('behind that proxy numeric ids need no fallback', async () => {
    const start = gl.requests.length;
    assert.equal((await viaProxy.getProject(app.id)).id, app.id);
    assert.deepEqual(requestsSince(start), [`GET /api/v4/projects/${app.id}`]);
  });
});

/** A write through the fake's REST API, as an agent with an `api` token would make it. */
async function post(gl: FakeGitLab, token: string, path: string, body: object): Promise<{ iid: number }> {
  const response = await fetch(`${gl.baseUrl}/api/v4${path}`, {
    method: 'POST',
    headers: { 'private-token': token, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { iid: number };
  assert.equal(response.status, 201, `POST ${path}: ${JSON.stringify(json)}`);
  return json;
}

/** A moment strictly between what was created before and what is created after it. */
async function instant(): Promise<string> {
  await delay(5);
  const at = new Date().toISOString();
  await delay(5);
  return at;
}

describe('GitLabProjectsApi: branches, protection, merge requests and issues', () => {
  let gl: FakeGitLab;
  let proxy: ReverseProxy;
  let aliceId: number;
  let aliceToken: string;
  let bobToken: string;
  let app: FakeProject;
  let client: GitLabClient;
  let viaProxy: GitLabClient;

  before(async () => {
    gl = await startFakeGitLab();
    proxy = await startReverseProxy(gl.baseUrl, { decodeSlashes: true });
    aliceId = gl.addUser({ username: 'alice' }).id;
    const bobId = gl.addUser({ username: 'bob' }).id;
    aliceToken = gl.addToken(aliceId, { scopes: ['api'], expiresAt: '2099-01-01' });
    bobToken = gl.addToken(bobId, { scopes: ['api'], expiresAt: '2099-01-01' });
    app = gl.addProject({
      path: 'group/app',
      members: [
        { userId: aliceId, accessLevel: 30 },
        { userId: bobId, accessLevel: 30 },
      ],
      branches: ['feature/x'],
    });
    const options = { token: aliceToken, tokenKind: 'pat' as const, policy: LOOPBACK_ALLOWED, sleep: noSleepExpected };
    client = createGitLabClient({ ...options, baseUrl: gl.baseUrl });
    viaProxy = createGitLabClient({ ...options, baseUrl: proxy.baseUrl });
  });
  after(async () => {
    await client.close();
    await viaProxy.close();
    await proxy.close();
    await gl.close();
  });

  test('protected branches: the default rule, custom levels and wildcards, across pages', async () => {
    gl.protectBranch(app.id, 'release/*', { pushAccessLevel: 0, mergeAccessLevel: 30, allowForcePush: true });
    for (let i = 0; i < 100; i++) gl.protectBranch(app.id, `stable-${i}`);
    const start = gl.requests.length;
    const rules = await client.protectedBranches(app.id);
    assert.equal(rules.length, 102);
    assert.deepEqual(rules.find((rule) => rule.name === 'main'), {
      name: 'main',
      pushAccessLevels: [40],
      mergeAccessLevels: [40],
      allowForcePush: false,
    });
    assert.deepEqual(rules.find((rule) => rule.name === 'release/*'), {
      name: 'release/*',
      pushAccessLevels: [0],
      mergeAccessLevels: [30],
      allowForcePush: true,
    });
    const pages = gl.requests.slice(start);
    assert.equal(pages.length, 2);
    assert.equal(pages[0]?.query['per_page'], '100');
  });

  test('a project without protected branches has none', async () => {
    const bare = gl.addProject({ path: 'group/bare', protectDefaultBranch: false, members: [{ userId: aliceId, accessLevel: 30 }] });
    assert.deepEqual(await client.protectedBranches(bare.id), []);
  });

  test('branch existence, with slashes URL-encoded', async () => {
    const start = gl.requests.length;
    assert.equal(await client.branchExists(app.id, 'main'), true);
    assert.equal(await client.branchExists(app.id, 'feature/x'), true);
    assert.equal(await client.branchExists(app.id, 'nope'), false);
    assert.deepEqual(
      gl.requests.slice(start).map((r) => r.path),
      [
        `/api/v4/projects/${app.id}/repository/branches/main`,
        `/api/v4/projects/${app.id}/repository/branches/feature%2Fx`,
        `/api/v4/projects/${app.id}/repository/branches/nope`,
      ],
    );
  });

  test('a missing branch with a slash costs one more request to rule out a decoded %2F', async () => {
    const start = gl.requests.length;
    assert.equal(await client.branchExists(app.id, 'feature/nope'), false);
    assert.deepEqual(
      gl.requests.slice(start).map((r) => [r.path, r.query['search']]),
      [
        [`/api/v4/projects/${app.id}/repository/branches/feature%2Fnope`, undefined],
        [`/api/v4/projects/${app.id}/repository/branches`, '^feature/nope'],
      ],
    );
  });

  test('behind a proxy that decodes %2F, a branch with a slash is still found', async () => {
    assert.equal(await viaProxy.branchExists(app.id, 'feature/x'), true);
    assert.equal(await viaProxy.branchExists(app.id, 'feature/nope'), false);
    assert.equal(await viaProxy.branchExists(app.id, 'main'), true);
    // The decoded paths match no GitLab route: GitLab's catch-all 404, which the client must see through.
    assert.deepEqual(
      gl.takeUnimplemented().map((r) => r.path),
      [`/api/v4/projects/${app.id}/repository/branches/feature/x`, `/api/v4/projects/${app.id}/repository/branches/feature/nope`],
    );
  });

  test('branch existence in a missing project is false, and other errors are thrown', async () => {
    assert.equal(await client.branchExists(999_999, 'a/b'), false);
    gl.revokeToken(bobToken);
    const revoked = createGitLabClient({ baseUrl: gl.baseUrl, token: bobToken, tokenKind: 'pat', policy: LOOPBACK_ALLOWED });
    try {
      await assert.rejects(revoked.branchExists(app.id, 'main'), (error: unknown) => error instanceof UpstreamError && error.reason === 'token_revoked');
    } finally {
      await revoked.close();
    }
  });
});

describe('GitLabProjectsApi: what an account created since a moment', () => {
  let gl: FakeGitLab;
  let aliceId: number;
  let aliceToken: string;
  let bobToken: string;
  let app: FakeProject;
  let client: GitLabClient;
  const bulk = Array.from({ length: 101 }, (_, i) => `bulk/${String(i).padStart(3, '0')}`);

  before(async () => {
    gl = await startFakeGitLab();
    aliceId = gl.addUser({ username: 'alice' }).id;
    const bobId = gl.addUser({ username: 'bob' }).id;
    aliceToken = gl.addToken(aliceId, { scopes: ['api'], expiresAt: '2099-01-01' });
    bobToken = gl.addToken(bobId, { scopes: ['api'], expiresAt: '2099-01-01' });
    app = gl.addProject({
      path: 'group/sub/app',
      members: [
        { userId: aliceId, accessLevel: 30 },
        { userId: bobId, accessLevel: 30 },
      ],
      branches: ['early', 'late', 'bobs', ...bulk],
    });
    client = createGitLabClient({ baseUrl: gl.baseUrl, token: aliceToken, tokenKind: 'pat', policy: LOOPBACK_ALLOWED, sleep: noSleepExpected });
  });
  after(async () => {
    await client.close();
    await gl.close();
  });

  test('merge requests by author and time, every page', async () => {
    const mr = (branch: string) => ({ source_branch: branch, target_branch: 'main', title: `MR from ${branch}` });
    await post(gl, aliceToken, `/projects/${app.id}/merge_requests`, mr('early'));
    const since = await instant();
    const late = await post(gl, aliceToken, `/projects/${app.id}/merge_requests`, mr('late'));
    await post(gl, bobToken, `/projects/${app.id}/merge_requests`, mr('bobs'));

    const start = gl.requests.length;
    const found = await client.mergeRequests(app.id, { authorId: aliceId, createdAfter: since });
    assert.equal(found.length, 1);
    assert.deepEqual(found[0], {
      iid: late.iid,
      title: 'MR from late',
      sourceBranch: 'late',
      targetBranch: 'main',
      webUrl: `${gl.baseUrl}/group/sub/app/-/merge_requests/${late.iid}`,
      authorId: aliceId,
      createdAt: found[0]?.createdAt,
    });
    assert.ok(Date.parse(found[0]!.createdAt) >= Date.parse(since));
    const query = gl.requests[start]?.query;
    assert.deepEqual(
      { ...query },
      {
        author_id: String(aliceId),
        created_after: since,
        scope: 'all',
        state: 'all',
        order_by: 'created_at',
        sort: 'asc',
        per_page: '100',
      },
    );

    for (const branch of bulk) await post(gl, aliceToken, `/projects/${app.id}/merge_requests`, mr(branch));
    const before = gl.requests.length;
    const all = await client.mergeRequests(app.id, { authorId: aliceId, createdAfter: since });
    assert.equal(all.length, 102);
    assert.deepEqual(
      all.map((m) => m.sourceBranch),
      ['late', ...bulk],
      'oldest first, nothing lost between pages',
    );
    assert.equal(gl.requests.length - before, 2, 'two pages');
  });

  test('issues by author and time, every page', async () => {
    await post(gl, aliceToken, `/projects/${app.id}/issues`, { title: 'before the run' });
    const since = await instant();
    const titles: string[] = [];
    for (let i = 0; i < 102; i++) {
      titles.push(`found ${i}`);
      await post(gl, aliceToken, `/projects/${app.id}/issues`, { title: `found ${i}` });
    }
    await post(gl, bobToken, `/projects/${app.id}/issues`, { title: 'by someone else' });

    const start = gl.requests.length;
    const issues = await client.issues(app.id, { authorId: aliceId, createdAfter: since });
    assert.deepEqual(issues.map((issue) => issue.title), titles);
    assert.ok(issues.every((issue) => issue.authorId === aliceId));
    assert.match(issues[0]!.webUrl, new RegExp(`^${gl.baseUrl}/group/sub/app/-/issues/\\d+$`));
    assert.equal(gl.requests.length - start, 2, 'two pages');
    assert.equal(gl.requests[start]?.query['scope'], 'all');
    assert.equal(gl.requests[start]?.query['state'], 'all');

    const later = await instant();
    assert.deepEqual(await client.issues(app.id, { authorId: aliceId, createdAfter: later }), []);
  });

  test('a missing project is not_found', async () => {
    await assert.rejects(client.mergeRequests(999_999, { authorId: aliceId, createdAfter: new Date(0).toISOString() }), notFoundNaming(/404/));
    await assert.rejects(client.issues(999_999, { authorId: aliceId, createdAfter: new Date(0).toISOString() }), notFoundNaming(/404/));
  });
});
