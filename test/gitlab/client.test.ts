import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UpstreamError, type GitLabClient, type Project } from '../../src/core/index.ts';
import { createGitLabClient, gitlabClientFactory } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { json, LOOPBACK_ALLOWED, noSleepExpected, startLocalServer } from './helpers.ts';

async function collect(iterable: AsyncIterable<Project>): Promise<Project[]> {
  const out: Project[] = [];
  for await (const project of iterable) out.push(project);
  return out;
}

function isUpstream(reason: UpstreamError['reason']) {
  return (error: unknown) => {
    assert.ok(error instanceof UpstreamError, `expected UpstreamError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    return true;
  };
}

describe('GitLab client over HTTPS with a private CA under a subpath', () => {
  let gl: FakeGitLab;
  let token: string;
  let userId: number;

  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    userId = gl.addUser({ username: 'alice', name: 'Alice Example' }).id;
    token = gl.addToken(userId, { scopes: ['api'], expiresAt: '2099-01-01', name: 'forgelink' });
  });
  after(() => gl.close());

  test('reads the token, the user and the metadata', async () => {
    assert.match(gl.baseUrl, /^https:\/\/127\.0\.0\.1:\d+\/gitlab$/);
    const client = createGitLabClient({
      baseUrl: gl.baseUrl,
      caPem: gl.caPem,
      token,
      tokenKind: 'pat',
      policy: LOOPBACK_ALLOWED,
      sleep: noSleepExpected,
    });
    try {
      const start = gl.requests.length;
      const info = await client.inspectToken();
      assert.deepEqual(
        { ...info, id: undefined },
        { id: undefined, name: 'forgelink', scopes: ['api'], expiresAt: '2099-01-01', active: true, revoked: false, userId },
      );
      assert.deepEqual(await client.currentUser(), { id: userId, username: 'alice', name: 'Alice Example' });
      const meta = await client.metadata();
      assert.equal(meta.version, '18.1.1-ee');
      assert.equal(meta.enterprise, true);
      assert.deepEqual(
        gl.requests.slice(start).map((r) => [r.method, r.path, r.authorized]),
        [
          ['GET', '/api/v4/personal_access_tokens/self', true],
          ['GET', '/api/v4/user', true],
          ['GET', '/api/v4/metadata', true],
        ],
      );
    } finally {
      await client.close();
    }
  });

  test('without the CA the certificate is refused with advice to add a CA certificate', async () => {
    const start = gl.requests.length;
    const client = createGitLabClient({ baseUrl: gl.baseUrl, token, tokenKind: 'pat', policy: LOOPBACK_ALLOWED, sleep: noSleepExpected });
    try {
      await assert.rejects(client.currentUser(), (error: unknown) => {
        isUpstream('certificate')(error);
        assert.match((error as Error).message, /CA certificate to the connection/);
        assert.ok(!(error as Error).message.includes(token));
        return true;
      });
      assert.equal(gl.requests.length, start, 'no request may reach GitLab over an unverified connection');
    } finally {
      await client.close();
    }
  });

  test('the factory builds the same client from a target and credentials', async () => {
    const factory = gitlabClientFactory(LOOPBACK_ALLOWED, { sleep: noSleepExpected });
    const client = factory({ baseUrl: gl.baseUrl, caPem: gl.caPem }, { token, kind: 'pat' });
    try {
      assert.equal((await client.currentUser()).username, 'alice');
    } finally {
      await client.close();
    }
  });
});

describe('projects', () => {
  let gl: FakeGitLab;
  let client: GitLabClient;
  let expected: Map<number, string>;

  before(async () => {
    gl = await startFakeGitLab({ basePath: '/gitlab' });
    const me = gl.addUser({ username: 'dev' }).id;
    const other = gl.addUser({ username: 'other' }).id;
    const token = gl.addToken(me, { scopes: ['read_api'], expiresAt: '2099-01-01' });
    expected = new Map();
    const levels = [30, 40, 50] as const;
    for (let i = 0; i < 260; i++) {
      // Nested subgroups up to three levels deep.
      const path = ['acme', ...(i % 3 >= 1 ? ['platform'] : []), ...(i % 3 === 2 ? ['tools', 'cli'] : []), `app-${i}`].join('/');
      const project = gl.addProject({ path, members: [{ userId: me, accessLevel: levels[i % 3] as 30 | 40 | 50 }] });
      expected.set(project.id, path);
    }
    gl.addProject({ path: 'acme/reporter-only', members: [{ userId: me, accessLevel: 20 }] });
    gl.addProject({ path: 'acme/guest-only', members: [{ userId: me, accessLevel: 10 }] });
    gl.addProject({ path: 'acme/old', archived: true, members: [{ userId: me, accessLevel: 40 }] });
    gl.addProject({ path: 'elsewhere/not-mine', members: [{ userId: other, accessLevel: 50 }] });
    client = createGitLabClient({ baseUrl: gl.baseUrl, token, tokenKind: 'pat', policy: LOOPBACK_ALLOWED, sleep: noSleepExpected });
  });
  after(async () => {
    await client.close();
    await gl.close();
  });

  test('every page, each Developer+ project exactly once, nested paths kept, then stops', async () => {
    const start = gl.requests.length;
    const projects = await collect(client.projects());

    const ids = projects.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'no project twice');
    assert.deepEqual(new Map(projects.map((p) => [p.id, p.pathWithNamespace])), expected);
    const nested = projects.find((p) => p.pathWithNamespace.endsWith('/app-2'));
    assert.deepEqual(nested && { ...nested, id: 0 }, {
      id: 0,
      pathWithNamespace: 'acme/platform/tools/cli/app-2',
      defaultBranch: 'main',
      webUrl: `${gl.baseUrl}/acme/platform/tools/cli/app-2`,
      httpUrlToRepo: `${gl.baseUrl}/acme/platform/tools/cli/app-2.git`,
      accessLevel: 50,
    });

    // 260 projects at 100 per page: three pages and not one request more.
    const requests = gl.requests.slice(start);
    assert.deepEqual(
      requests.map((r) => [r.method, r.path]),
      [
        ['GET', '/api/v4/projects'],
        ['GET', '/api/v4/projects'],
        ['GET', '/api/v4/projects'],
      ],
    );
    const first = requests[0]?.query;
    assert.deepEqual(first, {
      membership: 'true',
      min_access_level: '30',
      archived: 'false',
      per_page: '100',
      order_by: 'id',
      sort: 'asc',
      pagination: 'keyset',
    });
    assert.ok(requests[1]?.query.id_after, 'keyset cursor followed from the Link header');
  });

  test('search is passed to GitLab', async () => {
    const start = gl.requests.length;
    const projects = await collect(client.projects({ search: 'app-25' }));
    assert.deepEqual(projects.map((p) => p.pathWithNamespace).sort(), [
      'acme/app-255',
      'acme/platform/app-25',
      'acme/platform/app-250',
      'acme/platform/tools/cli/app-251',
      'acme/platform/tools/cli/app-254',
      'acme/platform/tools/cli/app-257',
      'acme/app-252',
      'acme/app-258',
      'acme/platform/app-253',
      'acme/platform/app-256',
      'acme/platform/app-259',
    ].sort());
    assert.equal(gl.requests.slice(start).length, 1);
    assert.equal(gl.requests[start]?.query.search, 'app-25');
  });
});

describe('token problems', () => {
  let gl: FakeGitLab;
  let userId: number;

  before(async () => {
    gl = await startFakeGitLab();
    userId = gl.addUser({ username: 'bob' }).id;
  });
  after(() => gl.close());

  function clientFor(token: string, tokenKind: 'pat' | 'oauth' = 'pat') {
    return createGitLabClient({ baseUrl: gl.baseUrl, token, tokenKind, policy: LOOPBACK_ALLOWED, sleep: noSleepExpected });
  }

  for (const [name, make, reason] of [
    ['expired', () => gl.addToken(userId, { scopes: ['api'], expiresAt: '2020-01-01' }), 'token_expired'],
    ['revoked', () => gl.addToken(userId, { scopes: ['api'], revoked: true, expiresAt: '2099-01-01' }), 'token_revoked'],
    ['unknown', () => 'glpat-this-token-does-not-exist', 'token_invalid'],
  ] as const) {
    test(`${name} token → ${reason}, with a message that does not contain the token`, async () => {
      const token = make();
      const client = clientFor(token);
      try {
        for (const call of [() => client.currentUser(), () => client.inspectToken()]) {
          await assert.rejects(call(), (error: unknown) => {
            isUpstream(reason)(error);
            assert.equal((error as UpstreamError).status, 401);
            assert.ok(!JSON.stringify({ m: (error as Error).message, c: String((error as Error).cause) }).includes(token));
            return true;
          });
        }
      } finally {
        await client.close();
      }
    });
  }

  test('Bearer header for OAuth tokens reaches GitLab too', async () => {
    const token = gl.addToken(userId, { scopes: ['read_user'], expiresAt: '2099-01-01' });
    const client = clientFor(token, 'oauth');
    try {
      assert.equal((await client.currentUser()).username, 'bob');
    } finally {
      await client.close();
    }
  });

  test('missing scope → insufficient_scope naming the scopes GitLab wants', async () => {
    const token = gl.addToken(userId, { scopes: ['read_repository', 'write_repository'], expiresAt: '2099-01-01' });
    const client = clientFor(token);
    try {
      await assert.rejects(client.currentUser(), (error: unknown) => {
        isUpstream('insufficient_scope')(error);
        assert.equal((error as UpstreamError).status, 403);
        assert.match((error as Error).message, /read_user, api, read_api/);
        return true;
      });
      // /personal_access_tokens/self answers with any scope.
      assert.deepEqual((await client.inspectToken())?.scopes, ['read_repository', 'write_repository']);
    } finally {
      await client.close();
    }
  });

  test('inspectToken is null for a token that is not a personal access token (GitLab answers 400)', async () => {
    const server = await startLocalServer((req, res) => {
      if (req.url === '/api/v4/personal_access_tokens/self') {
        json(res, 400, { message: '400 Bad request - This endpoint requires token type to be a personal access token' });
        return;
      }
      json(res, 404, { error: '404 Not Found' });
    });
    const client = createGitLabClient({
      baseUrl: server.baseUrl,
      token: 'oauth-access-token',
      tokenKind: 'oauth',
      policy: LOOPBACK_ALLOWED,
      sleep: noSleepExpected,
    });
    try {
      assert.equal(await client.inspectToken(), null);
      assert.deepEqual(server.seen, ['GET /api/v4/personal_access_tokens/self']);
      assert.equal(server.headers[0]?.authorization, 'Bearer oauth-access-token');
      assert.equal(server.headers[0]?.['private-token'], undefined);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('projects on instances without keyset paging', () => {
  test('falls back to offset paging where GitLab cannot keyset-page (405)', async (t) => {
    const server = await startLocalServer((req, res) => {
      const url = new URL(req.url ?? '', `http://${req.headers.host}`);
      if (url.searchParams.get('pagination') === 'keyset') {
        json(res, 405, { error: 'Keyset pagination is not yet available for this type of request' });
        return;
      }
      const page = Number(url.searchParams.get('page') ?? '1');
      const next = new URL(url);
      next.searchParams.set('page', String(page + 1));
      const project = (id: number) => ({
        id,
        path_with_namespace: `g/p${id}`,
        default_branch: null,
        web_url: `http://x/g/p${id}`,
        http_url_to_repo: `http://x/g/p${id}.git`,
        permissions: { project_access: null, group_access: { access_level: 40 } },
      });
      json(res, 200, [project(page)], page < 2 ? { link: `<${next.href}>; rel="next"` } : {});
    });
    t.after(() => server.close());
    const client = createGitLabClient({ baseUrl: server.baseUrl, token: 'glpat-x', tokenKind: 'pat', policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    const projects = await collect(client.projects());
    assert.deepEqual(projects.map((p) => [p.id, p.accessLevel, p.defaultBranch]), [[1, 40, null], [2, 40, null]]);
    assert.equal(server.seen.length, 3);
    assert.ok(!server.seen[1]?.includes('pagination=keyset'));
  });
});
