import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from './index.ts';
import { clientFor, gitCli } from './test-support.ts';
import { waitFor } from '../../test/support/wait.ts';

describe('fake GitLab rate limits and injected faults', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let auth: Record<string, string>;

  before(async () => {
    gl = await startFakeGitLab();
    client = clientFor(gl);
    auth = { 'PRIVATE-TOKEN': gl.addToken(gl.addUser({ username: 'alice' }).id, { scopes: ['api'] }) };
  });
  after(async () => {
    await client.close();
    await gl.close();
  });

  test('every API answer carries RateLimit-* headers', async () => {
    const response = await client.get('/api/v4/user', auth);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('ratelimit-name'), 'throttle_authenticated_api');
    assert.equal(response.headers.get('ratelimit-limit'), '2000');
    const observed = Number(response.headers.get('ratelimit-observed'));
    assert.ok(observed >= 1);
    assert.equal(Number(response.headers.get('ratelimit-remaining')), 2000 - observed);
    const reset = Number(response.headers.get('ratelimit-reset'));
    assert.ok(reset > Date.now() / 1000 && reset <= Date.now() / 1000 + 60);
    await response.text();
  });

  test('holdFetches (holdRequests for git\'s fetches) keeps the fetch waiting until released; it then completes as usual', async (t) => {
    const git = await gitCli(gl);
    try {
      const user = gl.addUser({ username: 'slow-reader' }).id;
      const project = gl.addProject({ path: 'slow/held', members: [{ userId: user, accessLevel: 30 }] });
      const token = gl.addToken(user, { scopes: ['read_repository'] });
      const release = gl.holdFetches();
      t.after(release);
      let ended = false;
      const cloning = git.run(['clone', '--quiet', `${gl.baseUrl}/slow/held.git`, 'held'], { token }).finally(() => (ended = true));
      await waitFor('the fetch to reach GitLab', () => gl.requests.some((request) => request.method === 'POST' && request.path === '/slow/held.git/git-upload-pack'));
      // GitLab answers a request that came after the held one; the held one still has no answer.
      const later = await client.get('/api/v4/version', auth);
      assert.equal(later.status, 200);
      await later.text();
      assert.equal(ended, false, 'git waits while the fetch is held');
      release();
      const cloned = await cloning;
      assert.equal(cloned.code, 0, cloned.stderr);
      assert.equal((await git.run(['-C', 'held', 'rev-parse', 'HEAD'])).stdout.trim(), gl.branches(project.id).find((branch) => branch.name === 'main')?.sha);
    } finally {
      await git.close();
    }
  });

  test('injectRateLimit answers the next requests 429 "Retry later" with Retry-After', async () => {
    gl.injectRateLimit({ count: 2, retryAfterSeconds: 7 });
    for (let i = 0; i < 2; i++) {
      const response = await client.get('/api/v4/projects', auth);
      assert.equal(response.status, 429);
      assert.equal(await response.text(), 'Retry later\n');
      assert.equal(response.headers.get('retry-after'), '7');
      assert.equal(response.headers.get('ratelimit-remaining'), '0');
      const resetTime = Date.parse(response.headers.get('ratelimit-resettime') ?? '');
      assert.ok(Math.abs(resetTime - (Date.now() + 7000)) < 2000);
    }
    const recovered = await client.get('/api/v4/projects', auth);
    assert.equal(recovered.status, 200);
    await recovered.text();
  });

  test('injectServerErrors answers the next requests 502 (or 503), then recovers', async () => {
    gl.injectServerErrors(2);
    assert.equal((await client.get('/api/v4/user', auth)).status, 502);
    assert.equal((await client.get('/api/v4/user', auth)).status, 502);
    assert.equal((await client.get('/api/v4/user', auth)).status, 200);
    gl.injectServerErrors(1, 503);
    assert.equal((await client.get('/api/v4/user', auth)).status, 503);
    assert.equal((await client.get('/api/v4/user', auth)).status, 200);
  });
});

describe('fake GitLab over HTTPS', () => {
  test('serves with a certificate from its own test CA, for 127.0.0.1, and removes the CA file', async () => {
    const gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    const caFile = gl.caFile;
    try {
      assert.match(gl.baseUrl, /^https:\/\/127\.0\.0\.1:\d+\/gitlab$/);
      assert.match(gl.caPem ?? '', /^-----BEGIN CERTIFICATE-----/);
      assert.ok(caFile);
      const { readFile } = await import('node:fs/promises');
      assert.equal(await readFile(caFile, 'utf8'), gl.caPem);

      const client = clientFor(gl);
      const token = gl.addToken(gl.addUser({ username: 'alice' }).id, { scopes: ['read_user'] });
      const response = await client.get('/api/v4/personal_access_tokens/self', { 'PRIVATE-TOKEN': token });
      assert.equal(response.status, 200);
      await response.text();
      await client.close();

      // Without the CA the certificate is not trusted.
      const { fetch } = await import('undici');
      await assert.rejects(fetch(`${gl.baseUrl}/api/v4/version`));
    } finally {
      await gl.close();
    }
    const { access } = await import('node:fs/promises');
    await assert.rejects(access(caFile));
  });

  test('without tls there is no CA', async () => {
    const gl = await startFakeGitLab();
    try {
      assert.equal(gl.caPem, null);
      assert.equal(gl.caFile, null);
      assert.match(gl.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await gl.close();
    }
  });
});
