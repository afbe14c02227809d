import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from './index.ts';
import { clientFor, parseLinks } from './test-support.ts';

type Project = Record<string, unknown> & { id: number; path_with_namespace: string };

describe('fake GitLab projects', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let auth: Record<string, string>;
  let aliceId: number;
  let bobId: number;

  before(async () => {
    gl = await startFakeGitLab({ basePath: '/gitlab' });
    client = clientFor(gl);
    aliceId = gl.addUser({ username: 'alice' }).id;
    bobId = gl.addUser({ username: 'bob' }).id;
    auth = { 'PRIVATE-TOKEN': gl.addToken(aliceId, { scopes: ['read_api'] }) };
    // 45 projects alice develops, plus a few that differ in one respect each.
    for (let i = 0; i < 45; i++) {
      gl.addProject({ path: `group/sub/app${String(i).padStart(2, '0')}`, members: [{ userId: aliceId, accessLevel: 30 }] });
    }
    gl.addProject({ path: 'group/guest-only', members: [{ userId: aliceId, accessLevel: 10 }] });
    gl.addProject({ path: 'group/old', archived: true, members: [{ userId: aliceId, accessLevel: 40 }] });
    gl.addProject({ path: 'bob/secret', members: [{ userId: bobId, accessLevel: 50 }] });
    gl.addProject({ path: 'opensource/lib', visibility: 'public', members: [{ userId: bobId, accessLevel: 50 }] });
  });
  after(async () => {
    await client.close();
    await gl.close();
  });

  async function list(query: string): Promise<{ body: Project[]; headers: Headers }> {
    const response = await client.get(`/api/v4/projects?${query}`, auth);
    assert.equal(response.status, 200, await response.clone().text());
    return { body: (await response.json()) as Project[], headers: response.headers as unknown as Headers };
  }

  test('offset paging: headers and Link URLs on the same origin, under the subpath', async () => {
    const { body, headers } = await list('membership=true&min_access_level=30&archived=false&page=2');
    assert.equal(body.length, 20);
    assert.equal(headers.get('x-page'), '2');
    assert.equal(headers.get('x-per-page'), '20');
    assert.equal(headers.get('x-next-page'), '3');
    assert.equal(headers.get('x-prev-page'), '1');
    assert.equal(headers.get('x-total'), '45');
    assert.equal(headers.get('x-total-pages'), '3');
    const links = parseLinks(headers.get('link'));
    assert.deepEqual(Object.keys(links), ['next', 'prev', 'first', 'last']);
    const expected = (page: number) =>
      `${gl.baseUrl}/api/v4/projects?archived=false&membership=true&min_access_level=30&page=${page}&per_page=20`;
    assert.equal(links.next, expected(3));
    assert.equal(links.prev, expected(1));
    assert.equal(links.first, expected(1));
    assert.equal(links.last, expected(3));
  });

  test('following rel="next" visits every project once', async () => {
    const seen: number[] = [];
    let url: string | undefined = `${gl.baseUrl}/api/v4/projects?membership=true&min_access_level=30&archived=false`;
    while (url) {
      const response = await client.getUrl(url, auth);
      seen.push(...((await response.json()) as Project[]).map((p) => p.id));
      url = parseLinks(response.headers.get('link')).next;
    }
    assert.equal(seen.length, 45);
    assert.equal(new Set(seen).size, 45);
  });

  test('the last page has empty x-next-page and no rel="next"; per_page is capped at 100', async () => {
    const last = await list('membership=true&page=3');
    assert.equal(last.headers.get('x-next-page'), '');
    assert.equal(parseLinks(last.headers.get('link')).next, undefined);
    const big = await list('per_page=500');
    assert.equal(big.headers.get('x-per-page'), '100');
    const first = await list('membership=true');
    assert.equal(first.headers.get('x-prev-page'), '');
  });

  test('filters: membership, min_access_level, archived, search, visibility', async () => {
    const paths = async (query: string) => (await list(`${query}&per_page=100`)).body.map((p) => p.path_with_namespace).sort();
    const all = await paths('');
    assert.equal(all.length, 48, 'visible: 45 + guest-only + old + public lib, not bob/secret');
    assert.ok(all.includes('opensource/lib'));
    assert.ok(!all.includes('bob/secret'));
    assert.equal((await paths('membership=true')).length, 47);
    assert.deepEqual(await paths('min_access_level=40'), ['group/old']);
    assert.equal((await paths('membership=true&archived=false')).length, 46);
    assert.deepEqual(await paths('archived=true'), ['group/old']);
    assert.deepEqual(await paths('search=APP07'), ['group/sub/app07']);
    assert.deepEqual(await paths('visibility=public'), ['opensource/lib']);
  });

  test('list entries carry GitLab fields; http_url_to_repo keeps the subpath and port', async () => {
    const { body } = await list('search=app07');
    const project = body[0];
    assert.ok(project);
    const origin = new URL(gl.baseUrl);
    assert.equal(project.name, 'app07');
    assert.equal(project.path, 'app07');
    assert.equal(project.name_with_namespace, 'group / sub / app07');
    assert.equal(project.default_branch, 'main');
    assert.equal(project.web_url, `${gl.baseUrl}/group/sub/app07`);
    assert.equal(project.http_url_to_repo, `http://127.0.0.1:${origin.port}/gitlab/group/sub/app07.git`);
    assert.equal(project.ssh_url_to_repo, 'git@127.0.0.1:group/sub/app07.git');
    assert.equal(project.archived, false);
    assert.equal(project.visibility, 'private');
    assert.deepEqual(project.permissions, { project_access: { access_level: 30, notification_level: 3 }, group_access: null });
    const namespace = project.namespace as Record<string, unknown>;
    assert.equal(namespace.full_path, 'group/sub');
    assert.equal(namespace.kind, 'group');
    assert.equal(namespace.path, 'sub');
    assert.equal(typeof namespace.parent_id, 'number');
  });

  test('simple=true leaves out permissions, visibility and archived', async () => {
    const { body } = await list('simple=true&search=app07');
    const project = body[0];
    assert.ok(project);
    assert.equal(project.http_url_to_repo, `${gl.baseUrl}/group/sub/app07.git`);
    for (const key of ['permissions', 'visibility', 'archived']) assert.ok(!(key in project), key);
  });

  test('order_by and sort', async () => {
    const byName = (await list('order_by=name&sort=asc&membership=true&per_page=3')).body.map((p) => p.path_with_namespace);
    assert.deepEqual(byName, ['group/sub/app00', 'group/sub/app01', 'group/sub/app02']);
    const byIdDesc = (await list('order_by=id&per_page=2')).body.map((p) => p.id);
    assert.ok((byIdDesc[0] ?? 0) > (byIdDesc[1] ?? 0));
    const invalid = await client.get('/api/v4/projects?order_by=stars', auth);
    assert.equal(invalid.status, 400);
    assert.deepEqual(await invalid.json(), { error: 'order_by does not have a valid value' });
  });

  test('keyset paging: only rel="next" with id_after, walked to the end', async () => {
    const seen: number[] = [];
    let url: string | undefined = `${gl.baseUrl}/api/v4/projects?pagination=keyset&order_by=id&sort=asc&per_page=20&membership=true`;
    let pages = 0;
    while (url) {
      const response = await client.getUrl(url, auth);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-total'), null);
      const links = parseLinks(response.headers.get('link'));
      assert.deepEqual(Object.keys(links).filter((rel) => rel !== 'next'), []);
      if (links.next) {
        assert.ok(links.next.startsWith(`${gl.baseUrl}/api/v4/projects?`));
        assert.match(links.next, /[?&]id_after=\d+/);
      }
      seen.push(...((await response.json()) as Project[]).map((p) => p.id));
      url = links.next;
      pages += 1;
    }
    assert.equal(pages, 3);
    assert.equal(seen.length, 47);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
  });

  test('keyset paging descending uses id_before; other orderings answer 405', async () => {
    const response = await client.get('/api/v4/projects?pagination=keyset&order_by=id&sort=desc&per_page=5', auth);
    const next = parseLinks(response.headers.get('link')).next ?? '';
    const ids = ((await response.json()) as Project[]).map((p) => p.id);
    assert.match(next, new RegExp(`[?&]id_before=${ids.at(-1)}(&|$)`));
    const refused = await client.get('/api/v4/projects?pagination=keyset&order_by=name', auth);
    assert.equal(refused.status, 405);
    assert.deepEqual(await refused.json(), { error: 'Keyset pagination is not yet available for this type of request' });
  });

  test('GET /projects/:id by number and by URL-encoded full path', async () => {
    const byPath = await client.get('/api/v4/projects/group%2Fsub%2Fapp07', auth);
    assert.equal(byPath.status, 200);
    const project = (await byPath.json()) as Project;
    assert.equal(project.path_with_namespace, 'group/sub/app07');
    const byId = (await (await client.get(`/api/v4/projects/${project.id}`, auth)).json()) as Project;
    assert.deepEqual(byId, project);
  });

  test('a project the user may not see, or that does not exist, is 404 Project Not Found', async () => {
    for (const id of ['bob%2Fsecret', '99999', 'no%2Fsuch']) {
      const response = await client.get(`/api/v4/projects/${id}`, auth);
      assert.equal(response.status, 404, id);
      assert.equal(await response.text(), '{"message":"404 Project Not Found"}');
    }
  });

  test('anonymous requests see public projects only', async () => {
    const response = await client.get('/api/v4/projects');
    assert.equal(response.status, 200);
    const body = (await response.json()) as Project[];
    assert.deepEqual(body.map((p) => p.path_with_namespace), ['opensource/lib']);
    assert.ok(!('permissions' in (body[0] ?? {})), 'anonymous lists are BasicProjectDetails');
    assert.ok(!('visibility' in (body[0] ?? {})));
    const single = await client.get('/api/v4/projects/opensource%2Flib');
    const detail = (await single.json()) as Project;
    assert.equal(detail.visibility, 'public');
    assert.ok(!('permissions' in detail));
    assert.equal((await client.get('/api/v4/projects/group%2Fold')).status, 404);
  });

  test('/api/v3 answers 410; unknown /api/v4 routes answer 404', async () => {
    const gone = await client.get('/api/v3/projects', auth);
    assert.equal(gone.status, 410);
    assert.deepEqual(await gone.json(), { error: 'API V3 is no longer supported. Use API V4 instead.' });
    const missing = await client.get('/api/v4/nothing-here', auth);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: '404 Not Found' });
    const page = await client.get('/nothing/-/here');
    assert.equal(page.status, 404);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await page.text(), /<h1>404<\/h1>/);
    assert.deepEqual(
      gl.takeUnimplemented().map((request) => `${request.method} ${request.path}`),
      ['GET /api/v4/nothing-here', 'GET /nothing/-/here'],
    );
  });
});

describe('fake GitLab past 10,000 projects', () => {
  test('x-total, x-total-pages and rel="last" disappear; rel="next" stays', async () => {
    const gl = await startFakeGitLab();
    const client = clientFor(gl);
    try {
      const userId = gl.addUser({ username: 'many' }).id;
      const token = gl.addToken(userId, { scopes: ['api'] });
      for (let i = 0; i < 10_001; i++) gl.addProject({ path: `bulk/p${i}`, members: [{ userId, accessLevel: 30 }] });
      const response = await client.get('/api/v4/projects?membership=true&per_page=100&page=2', { 'PRIVATE-TOKEN': token });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as unknown[]).length, 100);
      assert.equal(response.headers.get('x-total'), null);
      assert.equal(response.headers.get('x-total-pages'), null);
      assert.equal(response.headers.get('x-next-page'), '3');
      assert.deepEqual(Object.keys(parseLinks(response.headers.get('link'))), ['next', 'prev', 'first']);
    } finally {
      await client.close();
      await gl.close();
    }
  });
});
