import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { databases, type TestTarget } from '../support/databases.ts';
import { forgelinkCli, startServerProcess, startWorkerProcess, type RunningServer } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { waitForNoProcesses } from '../sandbox/helpers.ts';

/**
 * Several forgelink processes on one PostgreSQL database (docs/architecture.md, "Processes"): API replicas
 * (`serve --no-runs`) and workers (`forgelink worker`), each a real process with a data directory of its own.
 */

// Short for the test, yet long enough that a worker stalled by a busy machine (five test processes, sandboxes, git) is
// not taken for lost.
const LOST_AFTER_S = 15;
const RUNS_PER_USER = 3;

type Run = { id: string; status: string; worker: string | null; error: { code: string; message: string } | null; startedAt: string | null; finishedAt: string | null };
type User = { name: string; apiKey: string; connectionId: string };

class Cluster {
  readonly processes: RunningServer[] = [];
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  constructor(home: string, env: NodeJS.ProcessEnv) {
    this.home = home;
    this.env = env;
  }

  envFor(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ...this.env, FORGELINK_DATA_DIR: join(this.home, name), ...extra };
  }

  async api(name: string): Promise<RunningServer> {
    const server = await startServerProcess(this.envFor(name), ['--no-runs']);
    this.processes.push(server);
    return server;
  }

  async worker(name: string, extra: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
    const worker = await startWorkerProcess(this.envFor(name, extra));
    this.processes.push(worker);
    return worker;
  }

  async workerId(name: string): Promise<string> {
    return (await readFile(join(this.home, name, 'worker-id'), 'utf8')).trim();
  }

  async stop(): Promise<void> {
    // A process that ended by itself is a failure to see: its output says why.
    for (const process of this.processes) {
      if (process.child.exitCode !== null) console.error(`a forgelink process exited with ${process.child.exitCode}:\n${process.output().slice(-4000)}`);
    }
    for (const process of this.processes) process.child.kill('SIGKILL');
    await Promise.all(this.processes.map((process) => process.stop()));
  }
}

async function call(server: RunningServer, user: User | { apiKey: string }, method: string, path: string, body?: unknown) {
  // A GET is repeated when the connection itself failed (a connect timeout on a machine this busy); nothing else is.
  for (let attempt = 1; method === 'GET' && attempt < 3; attempt += 1) {
    try {
      return await once(server, user, method, path, body);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
    }
  }
  return once(server, user, method, path, body);
}

async function once(server: RunningServer, user: User | { apiKey: string }, method: string, path: string, body?: unknown) {
  const response = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${user.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as any };
}

async function startRun(server: RunningServer, user: User, command: string[]): Promise<Run> {
  const started = await call(server, user, 'POST', '/runs', { connectionId: user.connectionId, project: 'acme/api', command });
  assert.equal(started.status, 201, JSON.stringify(started.json));
  return started.json as Run;
}

async function getRun(server: RunningServer, user: User, id: string): Promise<Run> {
  const got = await call(server, user, 'GET', `/runs/${id}`);
  assert.equal(got.status, 200, JSON.stringify(got.json));
  return got.json as Run;
}

async function logText(server: RunningServer, user: User, id: string): Promise<string> {
  const log = await call(server, user, 'GET', `/runs/${id}/log`);
  return log.json.entries.map((entry: { text: string }) => entry.text).join('');
}

const ENDED = ['succeeded', 'failed', 'canceled', 'timed_out'];

/** Most runs of one user whose [startedAt, finishedAt] overlap at any moment. */
function maxOverlap(runs: readonly Run[]): number {
  const events = runs.flatMap((run) => [
    { at: Date.parse(run.startedAt!), delta: 1 },
    { at: Date.parse(run.finishedAt!), delta: -1 },
  ]);
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let current = 0;
  let most = 0;
  for (const event of events) {
    current += event.delta;
    most = Math.max(most, current);
  }
  return most;
}

describe('two API processes and three workers on one PostgreSQL database', () => {
  let home: string;
  let target: TestTarget;
  let gitlab: FakeGitLab;
  let cluster: Cluster;
  let apiA: RunningServer;
  let apiB: RunningServer;
  const users: User[] = [];

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-distributed-'));
    const postgres = databases().find((db) => db.name === 'postgres')!;
    target = await postgres.createTarget();
    gitlab = await startFakeGitLab({ tls: true });
    cluster = new Cluster(home, {
      PATH: process.env.PATH,
      HOME: home,
      DATABASE_URL: target.options.databaseUrl,
      FORGELINK_MASTER_KEY: randomBytes(32).toString('base64'),
      FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
      FORGELINK_MONITOR: 'off',
      FORGELINK_WORKER_CONCURRENCY: '3',
      FORGELINK_RUNS_PER_USER: String(RUNS_PER_USER),
      FORGELINK_WORKER_LOST_AFTER: `${LOST_AFTER_S}s`,
      FORGELINK_WORKER_DRAIN: '4s',
    });
    const botId = gitlab.addUser({ username: 'agent-bot' }).id;
    gitlab.addProject({ path: 'acme/api', members: [{ userId: botId, accessLevel: 30 }] });
    [apiA, apiB] = await Promise.all([cluster.api('api-a'), cluster.api('api-b')]);
    await Promise.all(['worker-1', 'worker-2', 'worker-3'].map((name) => cluster.worker(name)));
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      const added = await forgelinkCli(['admin', 'user', 'add', name, '--json'], { env: cluster.envFor('admin') });
      assert.equal(added.code, 0, added.stderr);
      const apiKey: string = JSON.parse(added.stdout).apiKey;
      const token = gitlab.addToken(botId, { scopes: ['read_repository'], expiresAt: '2099-01-31' });
      const connection = await call(apiA, { apiKey }, 'POST', '/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
      assert.equal(connection.status, 201, JSON.stringify(connection.json));
      users.push({ name, apiKey, connectionId: connection.json.id });
    }
  });

  after(async () => {
    await cluster?.stop();
    await gitlab?.close();
    await target?.dispose();
    await rm(home, { recursive: true, force: true });
  });

  test('workers list shows the three workers with their capacity and heartbeat', async () => {
    const listed = await forgelinkCli(['workers', 'list', '--json'], { env: { ...cluster.envFor('cli'), FORGELINK_SERVER: apiB.url, FORGELINK_API_KEY: users[0]!.apiKey } });
    assert.equal(listed.code, 0, listed.stderr);
    const workers = JSON.parse(listed.stdout).workers as { id: string; host: string; capacity: number; running: number; lastHeartbeatAt: string }[];
    const ids = await Promise.all(['worker-1', 'worker-2', 'worker-3'].map((name) => cluster.workerId(name)));
    assert.deepEqual(workers.map((worker) => worker.id).sort(), [...ids].sort());
    for (const worker of workers) {
      assert.equal(worker.capacity, 3);
      assert.equal(typeof worker.running, 'number');
      assert.ok(Date.now() - Date.parse(worker.lastHeartbeatAt) < LOST_AFTER_S * 1000, 'a recent heartbeat');
    }
  });

  // Sixty real runs through real processes on two cores: minutes when the machine is busy with other test files.
  test('60 runs started through both API processes each run exactly once, all succeed, per-user limits hold', { timeout: 900_000 }, async () => {
    const started: { user: User; run: Run }[] = [];
    // alice starts 24, bob 18, carol 18, alternating between the two API processes; nine slots, three per user.
    const plan = [...Array(24).fill(users[0]), ...Array(18).fill(users[1]), ...Array(18).fill(users[2])] as User[];
    const t0 = Date.now();
    await Promise.all(
      plan.map(async (user, index) => {
        const run = await startRun(index % 2 === 0 ? apiA : apiB, user, ['true']);
        started.push({ user, run });
      }),
    );
    assert.equal(started.length, 60);
    const ended = new Map<string, Run>();
    await waitFor(
      'all 60 runs to end',
      async () => {
        for (const { user, run } of started) {
          if (ended.has(run.id)) continue;
          const now = await getRun(apiB, user, run.id);
          if (ENDED.includes(now.status)) ended.set(run.id, now);
        }
        return ended.size === 60;
      },
      { timeoutMs: 900_000, intervalMs: 1000 },
    ).catch(async (error: unknown) => {
      const states = await Promise.all(started.map(async ({ user, run }) => (await getRun(apiB, user, run.id)).status));
      throw new Error(`${String(error)}; statuses: ${JSON.stringify(states)}`);
    });
    const runs = [...ended.values()];
    const span = (from: string, to: string) => runs.map((run: any) => Date.parse(run[to]) - Date.parse(run[from])).sort((a, b) => a - b);
    console.log(JSON.stringify({ totalMs: Date.now() - t0, wait: span('createdAt', 'startedAt'), exec: span('startedAt', 'finishedAt') }));
    assert.deepEqual(
      runs.filter((run) => run.status !== 'succeeded').map((run) => `${run.id}: ${run.status} ${run.error?.message}`),
      [],
      'every run succeeded',
    );
    // Exactly once: each run's pipeline began once (one "Preparing run" line), on one worker.
    for (const { user, run } of started) {
      const text = await logText(apiA, user, run.id);
      assert.equal(text.split(`Preparing run ${run.id}`).length - 1, 1, `run ${run.id} was prepared once:\n${text}`);
    }
    const workerIds = new Set(runs.map((run) => run.worker));
    assert.ok(!workerIds.has(null), 'every run names its worker');
    assert.ok(workerIds.size >= 2, `the runs were spread over the workers (${[...workerIds].join(', ')})`);
    for (const user of users) {
      const mine = started.filter((entry) => entry.user === user).map((entry) => ended.get(entry.run.id)!);
      assert.ok(maxOverlap(mine) <= RUNS_PER_USER, `${user.name} had at most ${RUNS_PER_USER} runs at once (had ${maxOverlap(mine)})`);
    }
    // The limit is what kept alice's 30 from taking every slot: bob and carol ran while alice still had runs waiting.
    const aliceLast = Math.max(...started.filter((entry) => entry.user === users[0]).map((entry) => Date.parse(ended.get(entry.run.id)!.startedAt!)));
    const carolFirst = Math.min(...started.filter((entry) => entry.user === users[2]).map((entry) => Date.parse(ended.get(entry.run.id)!.startedAt!)));
    assert.ok(carolFirst < aliceLast, 'carol did not wait for all of alice\'s runs');
  });

  test('cancel and the live log through the API process that did not start the run', { timeout: 300_000 }, async () => {
    const [alice] = users as [User];
    const marker = `live-${randomUUID()}`;
    const run = await startRun(apiA, alice, ['sh', '-c', `echo first-line; sleep 600; echo ${marker}`]);
    // The log streams live (server-sent events) from API B while API A started the run and a worker executes it.
    const response = await fetch(`${apiB.url}/api/v1/runs/${run.id}/log`, { headers: { authorization: `Bearer ${alice.apiKey}`, accept: 'text/event-stream' } });
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let streamed = '';
    while (!streamed.includes('first-line')) {
      const { value, done } = await reader.read();
      assert.ok(!done, `the stream ended before the agent printed:\n${streamed}`);
      streamed += decoder.decode(value, { stream: true });
    }
    assert.equal((await getRun(apiA, alice, run.id)).status, 'running', 'the line arrived while the run was still running');
    const canceled = await call(apiB, alice, 'POST', `/runs/${run.id}/cancel`);
    assert.equal(canceled.status, 202, JSON.stringify(canceled.json));
    // The stream ends with the canceled run.
    while (!streamed.includes('event: end')) {
      const { value, done } = await reader.read();
      if (done) break;
      streamed += decoder.decode(value, { stream: true });
    }
    assert.match(streamed, /event: end\ndata: .*"status":"canceled"/);
    const ended = await getRun(apiA, alice, run.id);
    assert.equal(ended.status, 'canceled');
    assert.deepEqual(await waitForNoProcesses(marker), [], 'the agent was stopped on its worker');
  });

  test('kill -9 of a worker mid-run: its runs end worker_lost within the bound, others untouched, new runs taken, restart sweeps', { timeout: 300_000 }, async () => {
    const marker = `kill-${randomUUID()}`;
    const long = ['sh', '-c', `echo started; sleep 600; echo ${marker}`];
    // Two long runs per user: six runs on three workers of capacity three.
    const runs: { user: User; run: Run }[] = [];
    for (const user of users.slice(0, 3)) for (let i = 0; i < 2; i += 1) runs.push({ user, run: await startRun(i === 0 ? apiA : apiB, user, long) });
    const running = new Map<string, Run>();
    await waitFor(
      'the six runs to be running',
      async () => {
        for (const { user, run } of runs) {
          const now = await getRun(apiA, user, run.id);
          if (now.status === 'running' && (await logText(apiA, user, run.id)).includes('started')) running.set(run.id, now);
        }
        return running.size === runs.length;
      },
      { timeoutMs: 90_000, intervalMs: 300 },
    );
    const names = ['worker-1', 'worker-2', 'worker-3'];
    const ids = new Map(await Promise.all(names.map(async (name) => [await cluster.workerId(name), name] as const)));
    const victimId = [...running.values()].find((run) => run.worker !== null)!.worker!;
    const victimName = ids.get(victimId)!;
    const victim = cluster.processes.find((process) => process.output().includes(victimId))!;
    const victimRuns = runs.filter(({ run }) => running.get(run.id)!.worker === victimId);
    const survivors = runs.filter(({ run }) => running.get(run.id)!.worker !== victimId);
    assert.ok(victimRuns.length > 0 && survivors.length > 0);

    const killedAt = Date.now();
    const gone = new Promise((resolve) => victim.child.once('exit', resolve));
    victim.child.kill('SIGKILL');
    await gone;
    await waitFor(
      "the killed worker's runs to end",
      async () => {
        for (const { user, run } of victimRuns) if ((await getRun(apiB, user, run.id)).status === 'running') return false;
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const lostWithinMs = Date.now() - killedAt;
    // The bound is FORGELINK_WORKER_LOST_AFTER; a second more for this test's own polling on a busy machine.
    assert.ok(lostWithinMs <= (LOST_AFTER_S + 1) * 1000, `ended within the bound (${lostWithinMs} ms)`);
    for (const { user, run } of victimRuns) {
      const ended = await getRun(apiB, user, run.id);
      assert.equal(ended.status, 'failed');
      assert.equal(ended.error?.code, 'worker_lost', JSON.stringify(ended));
      assert.match(await logText(apiB, user, run.id), /was lost/);
    }
    for (const { user, run } of survivors) assert.equal((await getRun(apiA, user, run.id)).status, 'running', 'the other workers\' runs are untouched');

    // New runs are still taken (by the two live workers), here of a user not at the limit.
    const fresh = await startRun(apiA, users[3]!, ['true']);
    await waitFor('a new run to succeed', async () => (await getRun(apiA, users[3]!, fresh.id)).status === 'succeeded', { timeoutMs: 60_000 });

    // Restarted on its data directory, the worker sweeps what the killed one left there.
    const leftovers = [...(await readdir(join(home, victimName, 'runs')).catch(() => [])), ...(await readdir(join(home, victimName, 'sandboxes')).catch(() => []))];
    assert.ok(leftovers.length > 0, 'the killed worker left workspaces behind');
    await cluster.worker(victimName);
    assert.deepEqual(await readdir(join(home, victimName, 'runs')), []);
    assert.deepEqual(await readdir(join(home, victimName, 'sandboxes')).catch(() => []), []);

    for (const { user, run } of survivors) assert.equal((await call(apiB, user, 'POST', `/runs/${run.id}/cancel`)).status, 202);
    await waitFor(
      'the survivors to be canceled',
      async () => {
        for (const { user, run } of survivors) if ((await getRun(apiA, user, run.id)).status !== 'canceled') return false;
        return true;
      },
      { timeoutMs: 60_000 },
    );
    assert.deepEqual(await waitForNoProcesses(marker, 30_000), [], 'no agent of these runs survives');
  });
});

describe('SIGTERM on a worker drains it', () => {
  test('no new runs; a run that finishes within the drain period succeeds; a longer one ends worker_stopped; queued runs stay for another worker', { timeout: 300_000 }, async () => {
    const home = await mkdtemp(join(tmpdir(), 'forgelink-drain-'));
    const target = await databases().find((db) => db.name === 'postgres')!.createTarget();
    const gitlab = await startFakeGitLab({ tls: true });
    const cluster = new Cluster(home, {
      PATH: process.env.PATH,
      HOME: home,
      DATABASE_URL: target.options.databaseUrl,
      FORGELINK_MASTER_KEY: randomBytes(32).toString('base64'),
      FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
      FORGELINK_MONITOR: 'off',
      FORGELINK_WORKER_CONCURRENCY: '2',
      FORGELINK_WORKER_DRAIN: '5s',
    });
    try {
      const botId = gitlab.addUser({ username: 'agent-bot' }).id;
      gitlab.addProject({ path: 'acme/api', members: [{ userId: botId, accessLevel: 30 }] });
      const api = await cluster.api('api');
      const worker = await cluster.worker('worker-1');
      const added = await forgelinkCli(['admin', 'user', 'add', 'alice', '--json'], { env: cluster.envFor('admin') });
      assert.equal(added.code, 0, added.stderr);
      const apiKey: string = JSON.parse(added.stdout).apiKey;
      const token = gitlab.addToken(botId, { scopes: ['read_repository'], expiresAt: '2099-01-31' });
      const connection = await call(api, { apiKey }, 'POST', '/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
      const alice: User = { name: 'alice', apiKey, connectionId: connection.json.id };
      const marker = `drain-${randomUUID()}`;
      const short = await startRun(api, alice, ['sh', '-c', 'echo started; sleep 2; echo short-done']);
      const long = await startRun(api, alice, ['sh', '-c', `echo started; sleep 600; echo ${marker}`]);
      await waitFor(
        'both runs to be running',
        async () => {
          for (const run of [short, long]) if (!(await logText(api, alice, run.id)).includes('started')) return false;
          return true;
        },
        { timeoutMs: 90_000, intervalMs: 200 },
      );
      const queued = await startRun(api, alice, ['true']);

      const exited = new Promise<number | null>((resolve) => worker.child.once('exit', (code) => resolve(code)));
      worker.child.kill('SIGTERM');
      assert.equal(await exited, 0, worker.output());
      const shortEnd = await getRun(api, alice, short.id);
      assert.equal(shortEnd.status, 'succeeded', JSON.stringify(shortEnd));
      const longEnd = await getRun(api, alice, long.id);
      assert.equal(longEnd.status, 'failed');
      assert.equal(longEnd.error?.code, 'worker_stopped', JSON.stringify(longEnd));
      assert.ok(Date.parse(longEnd.finishedAt!) - Date.parse(shortEnd.finishedAt!) > 1000, 'the long run had the drain period');
      assert.equal((await getRun(api, alice, queued.id)).status, 'queued', 'a draining worker takes no new run');
      assert.deepEqual(await waitForNoProcesses(marker), []);
      assert.deepEqual(await readdir(join(home, 'worker-1', 'runs')).catch(() => []), []);
      const workers = await call(api, alice, 'GET', '/workers');
      assert.deepEqual(workers.json.workers, [], 'the stopped worker left the workers table');

      await cluster.worker('worker-2');
      await waitFor('the queued run to be taken by another worker', async () => (await getRun(api, alice, queued.id)).status === 'succeeded', { timeoutMs: 60_000 });
    } finally {
      await cluster.stop();
      await gitlab.close();
      await target.dispose();
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('one process per SQLite data directory', () => {
  test('a second serve on the same data directory is refused with a clear message; worker and serve --no-runs need PostgreSQL', async () => {
    const home = await mkdtemp(join(tmpdir(), 'forgelink-sqlite-lock-'));
    const env = { PATH: process.env.PATH, HOME: home, FORGELINK_DATA_DIR: join(home, 'data'), FORGELINK_MONITOR: 'off' };
    let first: RunningServer | undefined;
    try {
      first = await startServerProcess(env);
      const second = await forgelinkCli(['serve'], { env: { ...env, FORGELINK_LISTEN: '127.0.0.1:0' } });
      assert.notEqual(second.code, 0);
      assert.match(second.stderr, /Another forgelink process is already running on the data directory .*With SQLite, forgelink runs as one process/);
      const worker = await forgelinkCli(['worker'], { env: { ...env, FORGELINK_LISTEN: '127.0.0.1:0' } });
      assert.notEqual(worker.code, 0);
      assert.match(worker.stderr, /forgelink worker needs PostgreSQL \(DATABASE_URL\)/);
      const apiOnly = await forgelinkCli(['serve', '--no-runs'], { env: { ...env, FORGELINK_LISTEN: '127.0.0.1:0' } });
      assert.notEqual(apiOnly.code, 0);
      assert.match(apiOnly.stderr, /serve --no-runs needs PostgreSQL/);
      // The admin commands still work beside the running server.
      const listed = await forgelinkCli(['admin', 'user', 'list', '--json'], { env });
      assert.equal(listed.code, 0, listed.stderr);
      await first.stop();
      // Once the first is gone (however it ended), a new one starts.
      first = await startServerProcess(env);
    } finally {
      await first?.stop();
      await rm(home, { recursive: true, force: true });
    }
  });
});
