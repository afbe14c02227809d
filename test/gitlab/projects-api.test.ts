import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UpstreamError, type GitLabClient } from '../../src/core/index.ts';
import { createGitLabClient } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab, type FakeProject } from '../../testing/fake-gitlab/index.ts';
import { startDecodingProxy, type DecodingProxy } from './decoding-proxy.ts';
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
  let proxy: DecodingProxy;
  let token: string;
  let app: FakeProject;
  let client: GitLabClient;
  let viaProxy: GitLabClient;

  before(async () => {
    gl = await startFakeGitLab({ basePath: '/gitlab' });
    proxy = await startDecodingProxy(gl.baseUrl);
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
  });

  test('behind that proxy a deeper path is found too, and a missing one is not_found', async () => {
    assert.equal((await viaProxy.getProject('deep/er/nested/thing')).accessLevel, 40);
    await assert.rejects(viaProxy.getProject('group/sub/nope'), notFoundNaming(/"group\/sub\/nope"/));
    await assert.rejects(viaProxy.getProject('group/secret'), notFoundNaming(/"group\/secret"/));
  });

  test('behind that proxy numeric ids need no fallback', async () => {
    const start = gl.requests.length;
    assert.equal((await viaProxy.getProject(app.id)).id, app.id);
    assert.deepEqual(requestsSince(start), [`GET /api/v4/projects/${app.id}`]);
  });
});
