import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from './index.ts';
import { clientFor } from './test-support.ts';

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
