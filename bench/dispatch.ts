/**
 * The run queue's figures (docs/architecture.md, "The queue"): dispatch overhead per run, throughput of trivial
 * runs with one and three workers, and the queue's latency with 1,000 runs waiting. Needs PostgreSQL
 * (`BENCH_DATABASE_URL`, default the local `postgres` database as the tests use it); each measure makes a
 * database of its own and drops it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createForgelink, type Forgelink } from '../src/compose.ts';
import { readConfig } from '../src/config/index.ts';
import { generateApiKey, hashApiKey, newId, type Run, type RunQueue } from '../src/core/index.ts';
import { createLocalRunQueue, createLocalRunSignals, createPgRunQueue, createPgRunSignals } from '../src/queue/index.ts';
import { createRunWorker } from '../src/runs/index.ts';
import { openStorage, type Storage } from '../src/storage/index.ts';
import { startFakeGitLab } from '../testing/fake-gitlab/index.ts';
import { percentile } from './stats.ts';

type Row = (name: string, value: string, baselineName: string, baseline: string, extra?: string) => void;

const ADMIN_URL = process.env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const ms = (value: number) => `${value.toFixed(1)} ms`;

/** A fresh PostgreSQL database for one measure; `drop` removes it. */
async function database(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `forgelink_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const again = new pg.Client({ connectionString: ADMIN_URL });
      await again.connect();
      await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await again.end();
    },
  };
}

function queuedRun(userId: string): Run {
  return {
    id: newId('run'),
    userId,
    connectionId: 'con_missing',
    project: 'bench/app',
    projectId: null,
    projectPath: null,
    projectWebUrl: null,
    branch: null,
    baseBranch: null,
    agent: 'custom',
    image: { ref: 'host', digest: null },
    command: ['true'],
    allowHosts: [],
    secrets: [],
    timeoutMs: 60_000,
    status: 'queued',
    error: null,
    exitCode: null,
    warnings: [],
    outputs: { branches: [], mergeRequests: [], issues: [] },
    egress: { allowed: [], refused: [] },
    createdAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    worker: null,
    depth: null,
    filter: null,
    repoCache: null,
    timings: { readyMs: null, cloneMs: null },
    credentials: 'direct',
    policy: { refused: [], options: null },
  };
}

/**
 * Queue → the worker beginning the run's pipeline (claimed, `started`), one run at a time, through the real worker.
 * The runs name a connection that does not exist, so each ends at its first step without a sandbox: what is timed
 * is the dispatch alone (the sandbox's own start is the bench's sandbox row).
 */
async function dispatchOnce(storage: Storage, queue: RunQueue, signals: ReturnType<typeof createLocalRunSignals>, samples: number): Promise<number[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-bench-dispatch-'));
  const users = await storage.users.createUser({ id: newId('usr'), name: `bench${randomBytes(3).toString('hex')}`, isAdmin: false, apiKeyHash: hashApiKey(generateApiKey()), createdAt: new Date().toISOString() });
  let waiting: ((at: number) => void) | null = null;
  const never = () => {
    throw new Error('not reached in this bench');
  };
  const worker = createRunWorker({
    secrets: { assertExist: async () => {}, openForRun: async () => [] },
    runs: storage.runs,
    connections: storage.connections,
    tokens: { currentToken: never, refresh: never, withToken: never },
    gitlab: never,
    sandbox: { create: never },
    clock: { now: () => new Date() },
    settings: { agents: [], workDir: path.join(dir, 'runs'), concurrency: 2, defaultTimeoutMs: 60_000, maxTimeoutMs: 60_000, extraHosts: [], userHostPatterns: [], credentials: 'direct', policy: { allowTags: false, allowMerge: false, readOtherProjects: false } },
    outboundPolicy: { allow: [] },
    queue,
    signals,
    workers: storage.workers,
    id: `wrk_bench_${randomBytes(3).toString('hex')}`,
    host: 'bench',
    capacity: 2,
    heartbeatMs: 10_000,
    pollMs: 2_000,
    sandboxDir: path.join(dir, 'sandboxes'),
    events: { started: () => waiting?.(performance.now()) },
  });
  await worker.start();
  const times: number[] = [];
  try {
    for (let i = 0; i < samples + 3; i += 1) {
      const run = queuedRun(users.id);
      await storage.runs.createRun(run);
      const started = new Promise<number>((resolve) => (waiting = resolve));
      const t0 = performance.now();
      await queue.enqueue({ runId: run.id, userId: run.userId });
      await signals.queued();
      const t1 = await started;
      if (i >= 3) times.push(t1 - t0);
      await worker.idle();
    }
  } finally {
    await worker.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return times;
}

async function dispatchOverhead(row: Row): Promise<void> {
  const db = await database();
  const pgStorage = await openStorage({ dataDir: tmpdir(), databaseUrl: db.url });
  const sqliteDir = await mkdtemp(path.join(tmpdir(), 'forgelink-bench-sqlite-'));
  const sqliteStorage = await openStorage({ dataDir: sqliteDir });
  try {
    const pgQueue = createPgRunQueue({ pool: pgStorage.pool!, runsPerUser: 4 });
    const pgSignals = createPgRunSignals({ pool: pgStorage.pool! });
    const pgTimes = await dispatchOnce(pgStorage, pgQueue, pgSignals, 100);
    await pgSignals.close();
    await pgQueue.close();
    const localTimes = await dispatchOnce(sqliteStorage, createLocalRunQueue({ runsPerUser: 4 }), createLocalRunSignals(), 100);
    row('dispatch queue→claimed, p50 (100 runs, pg-boss)', ms(percentile(pgTimes, 50)), 'in-process queue (SQLite), p50', ms(percentile(localTimes, 50)));
    row('dispatch queue→claimed, p99 (pg-boss)', ms(percentile(pgTimes, 99)), 'in-process queue (SQLite), p99', ms(percentile(localTimes, 99)));
  } finally {
    await pgStorage.close();
    await sqliteStorage.close();
    await rm(sqliteDir, { recursive: true, force: true });
    await db.drop();
  }
}

/** take(1) + settle with `waiting` runs of 10 users in the queue, p50 and p99 of 100. */
async function takeLatency(queue: RunQueue, waiting: number): Promise<number[]> {
  for (let i = 0; i < waiting; i += 1) await queue.enqueue({ runId: `run_${i}_${randomBytes(4).toString('hex')}`, userId: `usr_${i % 10}` });
  const times: number[] = [];
  for (let i = 0; i < 100; i += 1) {
    await queue.enqueue({ runId: `run_x${i}`, userId: `usr_${i % 10}` });
    const t0 = performance.now();
    const [taken] = await queue.take(1);
    times.push(performance.now() - t0);
    if (taken !== undefined) await queue.settle(taken);
  }
  return times;
}

async function queueLatency(row: Row): Promise<void> {
  const results: number[][] = [];
  for (const waiting of [1000, 0]) {
    const db = await database();
    const storage = await openStorage({ dataDir: tmpdir(), databaseUrl: db.url });
    const queue = createPgRunQueue({ pool: storage.pool!, runsPerUser: 1_000 });
    try {
      results.push(await takeLatency(queue, waiting));
    } finally {
      await queue.close();
      await storage.close();
      await db.drop();
    }
  }
  const [loaded, empty] = results as [number[], number[]];
  row('queue take, 1,000 runs waiting, p50', ms(percentile(loaded, 50)), 'take, queue otherwise empty, p50', ms(percentile(empty, 50)));
  row('queue take, 1,000 runs waiting, p99', ms(percentile(loaded, 99)), 'take, queue otherwise empty, p99', ms(percentile(empty, 99)));
}

const EXAMPLES = fileURLToPath(new URL('../examples/agents', import.meta.url));

/** Seconds for `runs` trivial runs (`true`, real sandbox, fake GitLab) with `workers` worker processes' worth of workers. */
async function trivialRuns(workerCount: number, runs: number): Promise<number> {
  const db = await database();
  const gitlab = await startFakeGitLab({ tls: true });
  const home = await mkdtemp(path.join(tmpdir(), 'forgelink-bench-throughput-'));
  const keyring = { versions: [{ id: 'k1', key: randomBytes(32) }] };
  const env = (name: string) => ({
    DATABASE_URL: db.url,
    FORGELINK_DATA_DIR: path.join(home, name),
    FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
    FORGELINK_MONITOR: 'off',
    FORGELINK_LOG_LEVEL: 'silent',
    FORGELINK_WORKER_CONCURRENCY: '2',
    FORGELINK_RUNS_PER_USER: '100',
    FORGELINK_SANDBOX_MOUNTS: EXAMPLES,
  });
  const parts: Forgelink[] = [];
  try {
    const api = await createForgelink(readConfig(env('api')), { keyring, role: 'api' });
    parts.push(api);
    await api.start({ listen: false });
    for (let i = 0; i < workerCount; i += 1) {
      const worker = await createForgelink(readConfig(env(`worker-${i}`)), { keyring, role: 'worker' });
      parts.push(worker);
      await worker.start({ listen: false });
    }
    const apiKey = generateApiKey();
    await api.storage.users.createUser({ id: newId('usr'), name: 'bench', isAdmin: false, apiKeyHash: hashApiKey(apiKey), createdAt: new Date().toISOString() });
    const botId = gitlab.addUser({ username: 'bench-bot' }).id;
    gitlab.addProject({ path: 'bench/app', members: [{ userId: botId, accessLevel: 30 }] });
    const token = gitlab.addToken(botId, { scopes: ['read_repository'], expiresAt: '2099-01-31' });
    const request = async (method: string, url: string, body?: unknown) => {
      const response = await api.app.request(url, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const json = (await response.json()) as { id: string; status: string };
      if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${JSON.stringify(json)}`);
      return json;
    };
    const connection = await request('POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    const t0 = performance.now();
    const ids = await Promise.all(Array.from({ length: runs }, async () => (await request('POST', '/api/v1/runs', { connectionId: connection.id, project: 'bench/app', command: ['true'] })).id));
    for (;;) {
      const statuses = await Promise.all(ids.map(async (id) => (await request('GET', `/api/v1/runs/${id}`)).status));
      if (statuses.every((status) => ['succeeded', 'failed', 'canceled', 'timed_out'].includes(status))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return (performance.now() - t0) / 1000;
  } finally {
    for (const part of parts.reverse()) await part.stop();
    await gitlab.close();
    await rm(home, { recursive: true, force: true });
    await db.drop();
  }
}

async function throughput(row: Row): Promise<void> {
  const runs = 12;
  const one = await trivialRuns(1, runs);
  const three = await trivialRuns(3, runs);
  row(`${runs} trivial runs, 3 workers (capacity 2 each)`, `${(runs / three).toFixed(2)} runs/s`, '1 worker (capacity 2)', `${(runs / one).toFixed(2)} runs/s`, `${three.toFixed(1)} s vs ${one.toFixed(1)} s`);
}

/** Every figure of the queue, or one line saying why they are missing (no PostgreSQL). */
export async function queueBench(row: Row): Promise<void> {
  try {
    const probe = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
    await probe.connect();
    await probe.end();
  } catch {
    process.stdout.write(`queue figures skipped: PostgreSQL is not reachable at BENCH_DATABASE_URL (${new URL(ADMIN_URL).host})\n`);
    return;
  }
  await dispatchOverhead(row);
  await queueLatency(row);
  await throughput(row);
}
