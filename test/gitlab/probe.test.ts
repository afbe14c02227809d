import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UpstreamError } from '../../src/core/index.ts';
import { createGitLabProbe } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { closedPort, json, LOOPBACK_ALLOWED, noSleepExpected, recordingSleep, startLocalServer } from './helpers.ts';

function rejectsWith(reason: UpstreamError['reason'], check: (error: UpstreamError) => void = () => {}) {
  return (error: unknown) => {
    assert.ok(error instanceof UpstreamError, `expected UpstreamError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    check(error);
    return true;
  };
}

describe('probe against the fake (HTTPS, private CA, subpath)', () => {
  let gl: FakeGitLab;
  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
  });
  after(() => gl.close());

  test('recognises GitLab with one anonymous request under the subpath', async () => {
    const start = gl.requests.length;
    await createGitLabProbe(LOOPBACK_ALLOWED, { sleep: noSleepExpected }).assertGitLab({ baseUrl: gl.baseUrl, caPem: gl.caPem });
    assert.deepEqual(
      gl.requests.slice(start).map((r) => [r.method, r.path, r.authorized]),
      [['GET', '/api/v4/version', false]],
    );
  });

  test('retries through a passing 502', async () => {
    const { sleep, waits } = recordingSleep();
    gl.injectServerErrors(1);
    await createGitLabProbe(LOOPBACK_ALLOWED, { sleep }).assertGitLab({ baseUrl: gl.baseUrl, caPem: gl.caPem });
    assert.equal(waits.length, 1);
  });

  test('the instance without its subpath is not GitLab', async () => {
    const origin = new URL(gl.baseUrl).origin;
    await assert.rejects(
      createGitLabProbe(LOOPBACK_ALLOWED).assertGitLab({ baseUrl: origin, caPem: gl.caPem }),
      rejectsWith('not_gitlab', (error) => assert.match(error.message, /subpath/)),
    );
  });

  test('without the CA → certificate, suggesting a CA certificate', async () => {
    await assert.rejects(
      createGitLabProbe(LOOPBACK_ALLOWED).assertGitLab({ baseUrl: gl.baseUrl }),
      rejectsWith('certificate', (error) => assert.match(error.message, /CA certificate to the connection/)),
    );
  });

  test('loopback refused by the default policy → blocked_address', async () => {
    const start = gl.requests.length;
    await assert.rejects(
      createGitLabProbe({ allow: [] }).assertGitLab({ baseUrl: gl.baseUrl, caPem: gl.caPem }),
      rejectsWith('blocked_address'),
    );
    assert.equal(gl.requests.length, start);
  });
});

describe('probe against things that are not GitLab', () => {
  test('a web server answering HTML → not_gitlab', async (t) => {
    const server = await startLocalServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>Intranet</title>');
    });
    t.after(() => server.close());
    await assert.rejects(
      createGitLabProbe(LOOPBACK_ALLOWED).assertGitLab({ baseUrl: server.baseUrl }),
      rejectsWith('not_gitlab', (error) => assert.match(error.message, /text\/html/)),
    );
    assert.deepEqual(server.seen, ['GET /api/v4/version']);
    assert.equal(server.headers[0]?.['private-token'], undefined);
  });

  test('another JSON API → not_gitlab', async (t) => {
    for (const [status, body] of [
      [404, { error: 'not found' }],
      [401, { error: 'unauthorized' }],
      [200, { status: 'ok' }],
    ] as const) {
      const server = await startLocalServer((_req, res) => json(res, status, body));
      t.after(() => server.close());
      await assert.rejects(createGitLabProbe(LOOPBACK_ALLOWED).assertGitLab({ baseUrl: server.baseUrl }), rejectsWith('not_gitlab'));
    }
  });

  test('GitLab as its API answers: 401 {"message":"401 Unauthorized"} as JSON', async (t) => {
    const server = await startLocalServer((_req, res) => json(res, 401, { message: '401 Unauthorized' }));
    t.after(() => server.close());
    await createGitLabProbe(LOOPBACK_ALLOWED).assertGitLab({ baseUrl: server.baseUrl });
  });

  test('nothing listening → unreachable', async () => {
    const { sleep } = recordingSleep();
    await assert.rejects(
      createGitLabProbe(LOOPBACK_ALLOWED, { sleep }).assertGitLab({ baseUrl: `http://127.0.0.1:${await closedPort()}` }),
      rejectsWith('unreachable'),
    );
  });

  test('the metadata address → blocked_address', async () => {
    await assert.rejects(
      createGitLabProbe(LOOPBACK_ALLOWED).assertGitLab({ baseUrl: 'http://169.254.169.254/latest' }),
      rejectsWith('blocked_address'),
    );
  });
});
