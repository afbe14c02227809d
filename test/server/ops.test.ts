import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

type Sample = { name: string; labels: Record<string, string>; value: number };

/** Prometheus's text format (version 0.0.4): `# HELP`/`# TYPE` lines and `name{label="value",…} number` samples. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    const value = match[3] === '+Inf' ? Infinity : Number(match[3]);
    assert.ok(!Number.isNaN(value), `not a number: ${line}`);
    samples.push({ name: match[1] as string, labels, value });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((sample) => sample.name === name && Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted))?.value;
}

describe('health, readiness and metrics (docs/contract.md, "Health and metrics")', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let admin: TestUser;
  let alice: TestUser;

  before(async () => {
    gitlab = await startFakeGitLab();
    forgelink = await startForgelink();
    admin = await forgelink.addUser('root', { isAdmin: true });
    alice = await forgelink.addUser('alice');
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  test('/healthz and /readyz answer without a key; /readyz names a part that does not answer and says 503', async () => {
    const health = await forgelink.call(null, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.json.ok, true);
    const ready = await forgelink.call(null, 'GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(ready.json, { ok: true, checks: { database: 'ok', queue: 'ok' } });

    // Any part added through the seam counts: a check that fails makes the process not ready, and says which part.
    let cacheUp = false;
    forgelink.readiness.add({ name: 'cache', check: async () => {
      if (!cacheUp) throw new Error('connection refused');
    } });
    const down = await forgelink.call(null, 'GET', '/readyz');
    assert.equal(down.status, 503);
    assert.deepEqual(down.json, { ok: false, checks: { database: 'ok', queue: 'ok', cache: 'failed' } });
    assert.doesNotMatch(down.text, /connection refused/, 'why stays in the log');
    cacheUp = true;
    assert.equal((await forgelink.call(null, 'GET', '/readyz')).status, 200);
  });

  test('/metrics needs an administrator\'s API key', async () => {
    assert.equal((await forgelink.call(null, 'GET', '/metrics')).status, 401);
    const user = await forgelink.call(alice, 'GET', '/metrics');
    assert.equal(user.status, 403, user.text);
    assert.equal(user.json.error.code, 'admin_only');
    assert.equal((await forgelink.call(admin, 'GET', '/metrics')).status, 200);
  });

  test('/metrics in Prometheus format: runs by status, queue depth, run durations, live workers, GitLab calls and errors', async () => {
    const botId = gitlab.addUser({ username: 'metrics-bot' }).id;
    gitlab.addProject({ path: 'acme/metrics', members: [{ userId: botId, accessLevel: 30 }] });
    const token = gitlab.addToken(botId, { scopes: ['api'], expiresAt: '2030-01-01' });
    const connected = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, token });
    assert.equal(connected.status, 201, connected.text);
    const refused = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, token: 'glpat-not-a-real-token-000' });
    assert.equal(refused.status >= 400, true);

    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: connected.json.id, project: 'acme/metrics', command: ['sh', '-c', 'echo done'] });
    assert.equal(started.status, 201, started.text);
    let run: any;
    for (;;) {
      run = (await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`)).json;
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(run.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));

    const scraped = await forgelink.app.request('/metrics', { headers: { authorization: `Bearer ${admin.apiKey}` } });
    assert.equal(scraped.status, 200);
    assert.match(scraped.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseExposition(await scraped.text());
    for (const name of types.keys()) assert.match(name, /^forgelink_/);
    for (const sample of samples) assert.match(sample.name, /^forgelink_/);

    assert.equal(types.get('forgelink_queue_depth'), 'gauge');
    assert.equal(value(samples, 'forgelink_queue_depth'), 0);
    assert.equal(types.get('forgelink_runs'), 'gauge');
    assert.equal(value(samples, 'forgelink_runs', { status: 'succeeded' }), 1);
    assert.equal(value(samples, 'forgelink_runs', { status: 'queued' }), 0);
    assert.equal(value(samples, 'forgelink_workers_live'), 1);
    assert.equal(types.get('forgelink_run_duration_seconds'), 'histogram');
    assert.equal(value(samples, 'forgelink_run_duration_seconds_count', { status: 'succeeded' }), 1);
    assert.equal(value(samples, 'forgelink_run_duration_seconds_bucket', { status: 'succeeded', le: '+Inf' }), 1);
    assert.ok((value(samples, 'forgelink_run_duration_seconds_sum', { status: 'succeeded' }) ?? 0) > 0);
    assert.equal(types.get('forgelink_gitlab_api_requests_total'), 'counter');
    assert.ok((value(samples, 'forgelink_gitlab_api_requests_total', { status: '200' }) ?? 0) >= 2, 'the connect and the run asked GitLab');
    assert.ok((value(samples, 'forgelink_gitlab_api_requests_total', { status: '401' }) ?? 0) >= 1, 'the refused token');
    assert.equal(value(samples, 'forgelink_gitlab_api_errors_total', { status: '401' }), value(samples, 'forgelink_gitlab_api_requests_total', { status: '401' }));
    assert.equal(value(samples, 'forgelink_gitlab_api_errors_total', { status: '200' }), undefined, 'a 200 is no error');
    assert.equal(types.get('forgelink_oauth_token_refreshes_total'), 'counter');
  });
});

describe('FORGELINK_METRICS_ACCESS=open', () => {
  test('anyone who reaches the listener reads /metrics', async () => {
    const forgelink = await startForgelink({ env: { FORGELINK_METRICS_ACCESS: 'open' } });
    try {
      const open = await forgelink.call(null, 'GET', '/metrics');
      assert.equal(open.status, 200);
      assert.match(open.text, /^# HELP forgelink_/m);
    } finally {
      await forgelink.close();
    }
  });
});
