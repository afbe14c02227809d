import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab, type FakeOAuthApplication } from './index.ts';
import { browserFor, clientFor, gitCli, remoteLines, type Browser, type GitCli } from './test-support.ts';

const REDIRECT = 'https://forgelink.example.com/callback';
const EXPIRED = 'Token is expired. You can either do re-authorization or token refresh.';
const REVOKED = 'Token was revoked. You have to re-authorize from the user.';
// Debian's python3-gitlab belongs to /usr/bin/python3.
const PYTHON = '/usr/bin/python3';

/** OAuth access tokens where GitLab takes them: the REST API as Bearer, git over HTTPS, python-gitlab. */
describe('OAuth access tokens on the REST API and git (HTTPS, subpath)', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let browser: Browser;
  let git: GitCli;
  let app: FakeOAuthApplication;
  let devId: number;
  let url: string;

  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    client = clientFor(gl);
    browser = browserFor(gl);
    git = await gitCli(gl);
    devId = gl.addUser({ username: 'dev', name: 'Dev Eloper' }).id;
    gl.addProject({ path: 'team/app', members: [{ userId: devId, accessLevel: 30 }] });
    url = `${gl.baseUrl}/team/app.git`;
    app = gl.addOAuthApplication({ redirectUri: REDIRECT, scopes: ['api', 'read_user', 'read_repository', 'write_repository'] });
    gl.oauthAutoApprove(devId);
  });
  after(async () => {
    await git.close();
    await browser.close();
    await client.close();
    await gl.close();
  });

  /** An access token with `scope` through the auto-approved code flow. */
  async function accessToken(scope: string): Promise<string> {
    const query = new URLSearchParams({ client_id: app.clientId, redirect_uri: REDIRECT, response_type: 'code', scope });
    const authorized = await browser.get(`${gl.baseUrl}/oauth/authorize?${query}`);
    const code = new URL(authorized.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const response = await client.post('/oauth/token', {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      client_id: app.clientId,
      client_secret: app.clientSecret,
    });
    assert.equal(response.status, 200);
    return ((await response.json()) as { access_token: string }).access_token;
  }

  test('accepted as Authorization: Bearer and as the access_token parameter, refused as PRIVATE-TOKEN', async () => {
    const token = await accessToken('read_user');
    for (const [path, headers] of [
      ['/api/v4/user', { Authorization: `Bearer ${token}` }],
      [`/api/v4/user?access_token=${token}`, {}],
    ] as const) {
      const response = await client.get(path, headers);
      assert.equal(response.status, 200, path);
      assert.equal(((await response.json()) as { username: string }).username, 'dev');
    }
    for (const [path, headers] of [
      ['/api/v4/user', { 'PRIVATE-TOKEN': token }],
      [`/api/v4/user?private_token=${token}`, {}],
    ] as const) {
      const response = await client.get(path, headers);
      assert.equal(response.status, 401, path);
      assert.equal(await response.text(), '{"message":"401 Unauthorized"}');
    }
    const recorded = gl.requests.filter((r) => r.path === '/api/v4/user');
    assert.deepEqual(recorded.map((r) => r.authorized), [true, true, false, false]);
  });

  test('scopes come from the grant', async () => {
    const readUser = await accessToken('read_user');
    const projects = await client.get('/api/v4/projects', { Authorization: `Bearer ${readUser}` });
    assert.equal(projects.status, 403);
    assert.deepEqual(await projects.json(), {
      error: 'insufficient_scope',
      error_description: 'The request requires higher privileges than provided by the access token.',
      scope: 'api read_api',
    });
    const api = await accessToken('api');
    const listed = await client.get('/api/v4/projects?membership=true', { Authorization: `Bearer ${api}` });
    assert.equal(listed.status, 200);
    assert.deepEqual(((await listed.json()) as Array<{ path_with_namespace: string }>).map((p) => p.path_with_namespace), ['team/app']);
  });

  test('/personal_access_tokens/self answers 400 for an OAuth token', async () => {
    const response = await client.get('/api/v4/personal_access_tokens/self', { Authorization: `Bearer ${await accessToken('api')}` });
    assert.equal(response.status, 400);
    assert.equal(await response.text(), '{"message":"400 Bad request - This endpoint requires token type to be a personal access token"}');
  });

  test('expired and revoked OAuth tokens get 401 invalid_token with GitLab\'s descriptions', async () => {
    const expired = await accessToken('api');
    gl.expireOAuthToken(expired);
    const revoked = await accessToken('api');
    gl.revokeOAuthToken(revoked);
    for (const [token, description] of [[expired, EXPIRED], [revoked, REVOKED]] as const) {
      const response = await client.get('/api/v4/user', { Authorization: `Bearer ${token}` });
      assert.equal(response.status, 401);
      assert.equal(
        response.headers.get('www-authenticate'),
        `Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="${description}"`,
      );
      assert.deepEqual(await response.json(), { error: 'invalid_token', error_description: description });
    }
  });

  test('git clone and push with oauth2:<token>; abilities follow the scopes', async () => {
    const api = await accessToken('api');
    const clone = await git.run(['clone', url, 'api-clone'], { token: api });
    assert.equal(clone.code, 0, clone.stderr);
    const repo = join(git.dir, 'api-clone');
    await git.run(['checkout', '-q', '-b', 'oauth-feature'], { cwd: repo });
    await writeFile(join(repo, 'oauth.txt'), 'pushed with an OAuth token\n');
    assert.equal((await git.run(['add', 'oauth.txt'], { cwd: repo })).code, 0);
    assert.equal((await git.run(['commit', '-q', '-m', 'OAuth push'], { cwd: repo })).code, 0);
    const push = await git.run(['push', 'origin', 'oauth-feature'], { cwd: repo, token: api });
    assert.equal(push.code, 0, push.stderr);
    assert.ok(gl.branches(1).some((b) => b.name === 'oauth-feature'));

    const readOnly = await accessToken('read_repository');
    assert.equal((await git.run(['ls-remote', url], { token: readOnly })).code, 0);
    const denied = await git.run(['push', 'origin', 'oauth-feature:read-only'], { cwd: repo, token: readOnly });
    assert.notEqual(denied.code, 0);
    assert.deepEqual(remoteLines(denied.stderr), ['You are not allowed to upload code.']);

    const writeRepo = await accessToken('write_repository');
    const pushed = await git.run(['push', 'origin', 'oauth-feature:write-repository'], { cwd: repo, token: writeRepo });
    assert.equal(pushed.code, 0, pushed.stderr);

    const noRepo = await accessToken('read_user');
    const refused = await git.run(['ls-remote', url], { token: noRepo });
    assert.deepEqual(remoteLines(refused.stderr), ['You are not allowed to download code.']);

    gl.expireOAuthToken(api);
    const expired = await git.run(['ls-remote', url], { token: api });
    assert.notEqual(expired.code, 0);
    assert.match(expired.stderr, /Authentication failed/);
  });

  test('python-gitlab with oauth_token= reads /user', async () => {
    const token = await accessToken('read_user');
    const script = [
      'import json, os, gitlab',
      'gl = gitlab.Gitlab(os.environ["GL_URL"], oauth_token=os.environ["GL_TOKEN"], ssl_verify=os.environ["GL_CA"])',
      'gl.auth()',
      'print(json.dumps({"id": gl.user.id, "username": gl.user.username, "name": gl.user.name}))',
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(PYTHON, ['-c', script], {
        env: { PATH: '/usr/bin:/bin', GL_URL: gl.baseUrl, GL_TOKEN: token, GL_CA: gl.caFile ?? '' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`python exited ${code}: ${stderr}`))));
    });
    assert.deepEqual(JSON.parse(out), { id: devId, username: 'dev', name: 'Dev Eloper' });
    const last = gl.requests.filter((r) => r.path === '/api/v4/user').at(-1);
    assert.equal(last?.authorized, true);
  });
});
