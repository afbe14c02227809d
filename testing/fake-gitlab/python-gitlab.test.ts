import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from './index.ts';

// Debian's python3-gitlab belongs to /usr/bin/python3; another python3 may come first on PATH.
const PYTHON = '/usr/bin/python3';

/**
 * Drives the fake with python-gitlab, a real GitLab client: current user, every project across
 * pages (offset and keyset), token self-inspection, and the errors for a revoked token. Warnings
 * are errors, so python-gitlab's complaint about a Link to another origin would fail the test.
 */
const SCRIPT = String.raw`
import json, os, warnings
warnings.simplefilter("error")
import gitlab

url = os.environ["GL_URL"]
gl = gitlab.Gitlab(url, private_token=os.environ["GL_TOKEN"], ssl_verify=os.environ["GL_CA"])
gl.auth()
out = {"user": {"id": gl.user.id, "username": gl.user.username, "name": gl.user.name}}

projects = list(gl.projects.list(membership=True, min_access_level=30, archived=False, iterator=True))
out["offset"] = [p.path_with_namespace for p in projects]
out["clone_urls"] = sorted({p.http_url_to_repo.rsplit("/", 1)[0] for p in projects})

keyset = gl.projects.list(pagination="keyset", order_by="id", sort="asc", per_page=40, iterator=True)
out["keyset"] = [p.id for p in keyset]

out["token"] = gl.http_get("/personal_access_tokens/self")
out["version"] = list(gl.version())

revoked = gitlab.Gitlab(url, private_token=os.environ["GL_REVOKED"], ssl_verify=os.environ["GL_CA"])
try:
    revoked.auth()
    out["revoked"] = "accepted"
except gitlab.exceptions.GitlabAuthenticationError as e:
    out["revoked"] = {"status": e.response_code, "message": str(e.error_message)}

print(json.dumps(out))
`;

function runPython(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-'], { env: { PATH: '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`python exited ${code}: ${stderr}`))));
    child.stdin.end(SCRIPT);
  });
}

describe('python-gitlab against the fake (HTTPS, test CA, subpath)', () => {
  let gl: FakeGitLab;

  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
  });
  after(async () => {
    await gl.close();
  });

  test('current user, 250 projects across pages, token self-inspection, revoked token', async () => {
    const alice = gl.addUser({ username: 'alice', name: 'Alice Liddell' });
    const bob = gl.addUser({ username: 'bob' });
    const token = gl.addToken(alice.id, { scopes: ['read_api'], expiresAt: '2099-12-31', name: 'python' });
    const revoked = gl.addToken(alice.id, { scopes: ['api'], revoked: true });
    const expected: string[] = [];
    for (let i = 0; i < 250; i++) {
      const path = `team/sub${i % 3}/repo${i}`;
      gl.addProject({ path, members: [{ userId: alice.id, accessLevel: i % 2 === 0 ? 30 : 40 }] });
      expected.push(path);
    }
    gl.addProject({ path: 'team/reporter-only', members: [{ userId: alice.id, accessLevel: 20 }] });
    gl.addProject({ path: 'team/archived', archived: true, members: [{ userId: alice.id, accessLevel: 30 }] });
    gl.addProject({ path: 'bob/private', members: [{ userId: bob.id, accessLevel: 50 }] });

    const out = JSON.parse(
      await runPython({ GL_URL: gl.baseUrl, GL_TOKEN: token, GL_REVOKED: revoked, GL_CA: gl.caFile ?? '' }),
    ) as {
      user: { id: number; username: string; name: string };
      offset: string[];
      clone_urls: string[];
      keyset: number[];
      token: Record<string, unknown>;
      version: string[];
      revoked: { status: number; message: string } | string;
    };

    assert.deepEqual(out.user, { id: alice.id, username: 'alice', name: 'Alice Liddell' });
    assert.deepEqual([...out.offset].sort(), [...expected].sort());
    assert.deepEqual(out.clone_urls, [0, 1, 2].map((i) => `${gl.baseUrl}/team/sub${i}`));
    assert.equal(out.keyset.length, 252, 'keyset listing sees every visible project');
    assert.deepEqual(out.keyset, [...out.keyset].sort((a, b) => a - b));
    assert.equal(out.token.name, 'python');
    assert.deepEqual(out.token.scopes, ['read_api']);
    assert.equal(out.token.expires_at, '2099-12-31');
    assert.equal(out.token.active, true);
    assert.equal(out.token.user_id, alice.id);
    assert.equal(out.version[0], '18.1.1-ee');
    // python-gitlab shows the body's `error` when there is no `message`.
    assert.deepEqual(out.revoked, { status: 401, message: 'invalid_token' });

    // Paging really happened: 13 offset pages of 20, 7 keyset pages of 40.
    const listings = gl.requests.filter((r) => r.path === '/api/v4/projects');
    assert.equal(listings.filter((r) => r.query.pagination !== 'keyset').length, 13);
    assert.equal(listings.filter((r) => r.query.pagination === 'keyset').length, 7);
    assert.ok(gl.requests.every((r) => r.path.startsWith('/api/v4/')));
  });
});
