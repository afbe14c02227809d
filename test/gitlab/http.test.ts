import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { UpstreamError } from '../../src/core/index.ts';
import { GitLabHttp, type GitLabHttpOptions, type HttpLogger } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { json, LOOPBACK_ALLOWED, noSleepExpected, recordingSleep, startLocalServer } from './helpers.ts';

const User = z.object({ username: z.string() });
const Item = z.object({ id: z.number() });

function rejectsWith(reason: UpstreamError['reason'], check: (error: UpstreamError) => void = () => {}) {
  return (error: unknown) => {
    assert.ok(error instanceof UpstreamError, `expected UpstreamError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    check(error);
    return true;
  };
}

function capturingLogger(): HttpLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: (meta, message) => lines.push(JSON.stringify({ message, ...meta })),
    warn: (meta, message) => lines.push(JSON.stringify({ message, ...meta })),
  };
}

describe('retries and rate limits against the fake', () => {
  let gl: FakeGitLab;
  let token: string;

  before(async () => {
    gl = await startFakeGitLab();
    const id = gl.addUser({ username: 'carol' }).id;
    token = gl.addToken(id, { scopes: ['api'], expiresAt: '2099-01-01' });
  });
  after(() => gl.close());

  function http(extra: Partial<GitLabHttpOptions> = {}): GitLabHttp {
    return GitLabHttp.create({ baseUrl: gl.baseUrl, token, policy: LOOPBACK_ALLOWED, sleep: noSleepExpected, ...extra });
  }

  test('a 429 that recovers waits what Retry-After asks, and logs no token', async () => {
    const { sleep, waits } = recordingSleep();
    const logger = capturingLogger();
    const client = http({ sleep, logger });
    const start = gl.requests.length;
    gl.injectRateLimit({ count: 2, retryAfterSeconds: 7 });
    assert.equal((await client.get('/user', User)).username, 'carol');
    assert.deepEqual(waits, [7000, 7000]);
    assert.equal(gl.requests.length - start, 3);
    assert.ok(logger.lines.some((line) => line.includes('gitlab rate limited')));
    assert.ok(logger.lines.every((line) => !line.includes(token)));
    await client.close();
  });

  test('a 429 asking for longer than the bound fails at once with rate_limited', async () => {
    const client = http({ maxRetryAfterSeconds: 60 });
    const start = gl.requests.length;
    gl.injectRateLimit({ count: 1, retryAfterSeconds: 3600 });
    await assert.rejects(
      client.get('/user', User),
      rejectsWith('rate_limited', (error) => assert.match(error.message, /3600 seconds/)),
    );
    assert.equal(gl.requests.length - start, 1);
    await client.close();
  });

  test('a 429 that does not recover within the attempts fails with rate_limited', async () => {
    const { sleep, waits } = recordingSleep();
    const client = http({ sleep, maxRetries: 2 });
    const start = gl.requests.length;
    gl.injectRateLimit({ count: 5, retryAfterSeconds: 1 });
    await assert.rejects(client.get('/user', User), rejectsWith('rate_limited'));
    assert.deepEqual(waits, [1000, 1000]);
    assert.equal(gl.requests.length - start, 3);
    gl.injectRateLimit({ count: 0, retryAfterSeconds: 0 });
    await client.close();
  });

  test('5xx on GET is retried with growing, jittered backoff, then succeeds', async () => {
    const { sleep, waits } = recordingSleep();
    const client = http({ sleep, random: () => 1 });
    const start = gl.requests.length;
    gl.injectServerErrors(2, 503);
    assert.equal((await client.get('/user', User)).username, 'carol');
    assert.deepEqual(waits, [500, 1000]);
    assert.equal(gl.requests.length - start, 3);
    await client.close();
  });

  test('jitter keeps backoff between half and all of the ceiling', async () => {
    const { sleep, waits } = recordingSleep();
    const client = http({ sleep, random: () => 0 });
    gl.injectServerErrors(2);
    await client.get('/user', User);
    assert.deepEqual(waits, [250, 500]);
    await client.close();
  });

  test('5xx that does not recover → server_error after the bounded attempts', async () => {
    const { sleep, waits } = recordingSleep();
    const client = http({ sleep, maxRetries: 2 });
    const start = gl.requests.length;
    gl.injectServerErrors(10);
    await assert.rejects(client.get('/user', User), rejectsWith('server_error', (e) => assert.equal(e.status, 502)));
    assert.equal(waits.length, 2);
    assert.equal(gl.requests.length - start, 3);
    gl.injectServerErrors(0);
    await client.close();
  });

  test('5xx on POST is not retried: GitLab may have acted on it', async () => {
    const client = http();
    const start = gl.requests.length;
    gl.injectServerErrors(1);
    await assert.rejects(client.post('/projects/1/issues', Item, { title: 'x' }), rejectsWith('server_error'));
    assert.deepEqual(
      gl.requests.slice(start).map((r) => [r.method, r.path]),
      [['POST', '/api/v4/projects/1/issues']],
    );
    await client.close();
  });

  test('offset paging follows Link rel="next" to the end', async () => {
    const me = gl.addUser({ username: 'pager' }).id;
    const pagerToken = gl.addToken(me, { scopes: ['read_api'], expiresAt: '2099-01-01' });
    const ids: number[] = [];
    for (let i = 0; i < 45; i++) ids.push(gl.addProject({ path: `pager/p${i}`, members: [{ userId: me, accessLevel: 30 }] }).id);
    const client = http({ token: pagerToken });
    const start = gl.requests.length;
    const seen: number[] = [];
    for await (const item of client.paginate('/projects', { membership: true, per_page: 20, order_by: 'id', sort: 'asc' }, Item)) {
      seen.push(item.id);
    }
    assert.deepEqual(seen, ids);
    assert.deepEqual(
      gl.requests.slice(start).map((r) => r.query.page ?? '1'),
      ['1', '2', '3'],
    );
    await client.close();
  });
});

describe('paging, redirects and messages against handcrafted servers', () => {
  test('an identical GET asked while one is under way (runs of one connection starting at once) waits for its answer; another token asks for itself', async (t) => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = await startLocalServer((req, res) => {
      void gate.then(() => json(res, 200, { username: req.headers['private-token'] === 'glpat-first' ? 'first' : 'second' }));
    });
    t.after(() => server.close());
    // One client per run, as each run makes its own; the last asks with other retry settings (as forgelink's token
    // rotation does), so it must not inherit a run's retries and waits, nor they its.
    const options: Partial<GitLabHttpOptions>[] = [{ token: 'glpat-first' }, { token: 'glpat-first' }, { token: 'glpat-first' }, { token: 'glpat-second' }, { token: 'glpat-first', maxRetries: 0 }];
    const clients = options.map((extra) => GitLabHttp.create({ baseUrl: server.baseUrl, policy: LOOPBACK_ALLOWED, ...extra }));
    t.after(() => Promise.all(clients.map((client) => client.close())));
    const answers = clients.map((client) => client.get('/user', User));
    // Asked before any answer came: one request per token and settings reaches GitLab.
    while (server.seen.length < 3) await new Promise((resolve) => setImmediate(resolve));
    release();
    assert.deepEqual((await Promise.all(answers)).map((user) => user.username), ['first', 'first', 'first', 'second', 'first']);
    assert.deepEqual(server.seen, ['GET /api/v4/user', 'GET /api/v4/user', 'GET /api/v4/user']);
    assert.deepEqual(server.headers.map((headers) => headers['private-token']).sort(), ['glpat-first', 'glpat-first', 'glpat-second']);
    // Nothing is kept once the answer is in: the next GET asks again.
    assert.equal((await clients[0]!.get('/user', User)).username, 'first');
    assert.equal(server.seen.length, 4);
    // Only GETs: a POST is each caller's own.
    await Promise.all([clients[0]!.post('/user', User), clients[1]!.post('/user', User)]);
    assert.equal(server.seen.length, 6);
  });

  test('a Link to another origin is not followed, and says why', async (t) => {
    const elsewhere = await startLocalServer((_req, res) => json(res, 200, [{ id: 99 }]));
    t.after(() => elsewhere.close());
    const foreign = elsewhere.baseUrl.replace('127.0.0.1', 'localhost');
    const server = await startLocalServer((_req, res) =>
      json(res, 200, [{ id: 1 }], { link: `<${foreign}/api/v4/projects?page=2>; rel="next"` }),
    );
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, token: 'glpat-secret', policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const item of client.paginate('/projects', {}, Item)) seen.push(item.id);
      })(),
      rejectsWith('bad_response', (error) => assert.match(error.message, /localhost/)),
    );
    assert.deepEqual(seen, [1]);
    assert.deepEqual(server.seen, ['GET /api/v4/projects']);
    assert.deepEqual(elsewhere.seen, []);
    assert.equal(elsewhere.connections, 0);
  });

  test('a Link on the same origin but outside the API root is not followed', async (t) => {
    const server = await startLocalServer((_req, res) =>
      json(res, 200, [{ id: 1 }], { link: '</other/api/v4/projects?page=2>; rel="next"' }),
    );
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: `${server.baseUrl}/gitlab`, policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    await assert.rejects(
      (async () => {
        for await (const _ of client.paginate('/projects', {}, Item));
      })(),
      rejectsWith('bad_response'),
    );
    assert.deepEqual(server.seen, ['GET /gitlab/api/v4/projects']);
  });

  test('without a Link header, x-next-page is followed; x-total is never needed', async (t) => {
    const server = await startLocalServer((req, res) => {
      const page = Number(new URL(req.url ?? '', 'http://x').searchParams.get('page') ?? '1');
      json(res, 200, [{ id: page }], { 'x-next-page': page < 3 ? String(page + 1) : '' });
    });
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    const seen: number[] = [];
    for await (const item of client.paginate('/projects', { per_page: 1 }, Item)) seen.push(item.id);
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(server.seen, [
      'GET /api/v4/projects?per_page=1',
      'GET /api/v4/projects?per_page=1&page=2',
      'GET /api/v4/projects?per_page=1&page=3',
    ]);
  });

  test('a Link that loops is detected instead of fetched forever', async (t) => {
    const server = await startLocalServer((req, res) =>
      json(res, 200, [{ id: 1 }], { link: `<http://${req.headers.host}/api/v4/projects?page=1>; rel="next"` }),
    );
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    await assert.rejects(
      (async () => {
        for await (const _ of client.paginate('/projects', { page: 1 }, Item));
      })(),
      rejectsWith('bad_response'),
    );
    assert.equal(server.seen.length, 1);
  });

  test('a redirect to another host is not followed and names where it pointed', async (t) => {
    const elsewhere = await startLocalServer((_req, res) => json(res, 200, { username: 'mallory' }));
    t.after(() => elsewhere.close());
    const target = `${elsewhere.baseUrl.replace('127.0.0.1', 'localhost')}/api/v4/user`;
    const server = await startLocalServer((_req, res) => {
      res.writeHead(302, { location: target });
      res.end();
    });
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, token: 'glpat-secret', policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    await assert.rejects(
      client.get('/user', User),
      rejectsWith('not_gitlab', (error) => {
        assert.ok(error.message.includes(target), error.message);
        assert.equal(error.status, 302);
      }),
    );
    assert.equal(elsewhere.connections, 0);
  });

  test('a same-origin redirect (a sign-in proxy, a wrong subpath) is reported, not followed', async (t) => {
    const server = await startLocalServer((_req, res) => {
      res.writeHead(301, { location: '/users/sign_in' });
      res.end();
    });
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    await assert.rejects(
      client.get('/user', User),
      rejectsWith('not_gitlab', (error) => assert.match(error.message, /\/users\/sign_in/)),
    );
    assert.deepEqual(server.seen, ['GET /api/v4/user']);
  });

  test('HTML where JSON was expected → not_gitlab', async (t) => {
    const server = await startLocalServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>Welcome to nginx</html>');
    });
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    await assert.rejects(client.get('/user', User), rejectsWith('not_gitlab', (e) => assert.match(e.message, /text\/html/)));
  });

  test('JSON of the wrong shape → bad_response', async (t) => {
    const server = await startLocalServer((_req, res) => json(res, 200, { name: 'no username here' }));
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    await assert.rejects(client.get('/user', User), rejectsWith('bad_response'));
  });

  test('GitLab messages are passed on, with the token scrubbed should one echo it', async (t) => {
    const server = await startLocalServer((_req, res) =>
      json(res, 400, { message: { title: ['is too long'], token: ['glpat-secret is odd'] } }),
    );
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, token: 'glpat-secret', policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    await assert.rejects(
      client.post('/projects/1/issues', Item, { title: 'x' }),
      rejectsWith('bad_response', (error) => {
        assert.equal(error.status, 400);
        assert.match(error.message, /title is too long/);
        assert.ok(!error.message.includes('glpat-secret'), error.message);
      }),
    );
    assert.equal(server.headers[0]?.['private-token'], 'glpat-secret');
    assert.equal(server.headers[0]?.['content-type'], 'application/json');
  });

  test('403 without insufficient_scope → forbidden; 404 → not_found', async (t) => {
    const server = await startLocalServer((req, res) => {
      if (req.url === '/api/v4/user') json(res, 403, { message: '403 Forbidden - Your account has been blocked.' });
      else json(res, 404, { message: '404 Project Not Found' });
    });
    t.after(() => server.close());
    const client = GitLabHttp.create({ baseUrl: server.baseUrl, policy: LOOPBACK_ALLOWED });
    t.after(() => client.close());
    await assert.rejects(client.get('/user', User), rejectsWith('forbidden', (e) => assert.match(e.message, /blocked/)));
    await assert.rejects(client.get('/projects/7', Item), rejectsWith('not_found'));
  });

  test('a server that never answers times out as unreachable, with a clean cause', async (t) => {
    const server = await startLocalServer(() => {});
    t.after(() => server.close());
    const client = GitLabHttp.create({
      baseUrl: server.baseUrl,
      token: 'glpat-secret',
      policy: LOOPBACK_ALLOWED,
      timeoutMs: 150,
      maxRetries: 0,
    });
    t.after(() => client.close());
    const started = Date.now();
    await assert.rejects(
      client.get('/user', User),
      rejectsWith('unreachable', (error) => {
        assert.match(error.message, /did not answer within 0\.2 seconds/);
        const cause = error.cause as Error;
        assert.deepEqual(
          Object.keys(cause).filter((key) => key !== 'code' && key !== 'name'),
          [],
          'the cause carries nothing but name, message and code',
        );
      }),
    );
    assert.ok(Date.now() - started < 2000);
  });
});
