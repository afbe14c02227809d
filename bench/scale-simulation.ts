/**
 * `npm run bench:scale`: the simulation behind docs/scaling.md. One `forgelink serve --no-runs` and many
 * `forgelink worker` processes on one PostgreSQL database run a few hundred trivial runs against the fake GitLab,
 * and the script measures what each run and each idle worker costs the database, how long dispatch takes, and how
 * much memory a worker holds. It prints figures and an extrapolation; nothing passes or fails.
 *
 * By default it starts a private PostgreSQL cluster (initdb in a temp dir, pg_stat_statements loaded) so that
 * cluster-wide figures (WAL, statements) are this simulation's alone and 20 workers' connections do not crowd a
 * shared server; `--admin-url` uses an existing server instead (a fresh database on it, dropped afterwards).
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { startFakeGitLab, type FakeGitLab } from '../testing/fake-gitlab/index.ts';
import { percentile } from './stats.ts';
import { forgelinkCli, startServerProcess, startWorkerProcess, type RunningServer } from '../test/support/processes.ts';

const run = promisify(execFile);

export type SimulationOptions = {
  workers: number;
  concurrency: number;
  runs: number;
  /** Runs submitted but not yet ended, at most (below the total capacity, so dispatch is measured without a backlog). */
  inFlight: number;
  users: number;
  idleSeconds: number;
  /** No new runs after this many minutes of load (the runs already submitted end); 0: no limit. */
  maxMinutes: number;
  /** An existing server's admin URL; null: a private cluster. */
  adminUrl: string | null;
  /** The command each run executes. */
  command: string[];
  /** Where to write every figure as JSON; null: nowhere. */
  json: string | null;
};

const USAGE = `usage: npm run bench:scale -- [--workers N] [--concurrency N] [--runs N] [--in-flight N] [--users N]
                                [--idle-seconds N] [--max-minutes N] [--admin-url postgres://…] [--json FILE] [-- command…]`;

/** Parses the simulation's flags; throws an Error naming the flag on bad input. */
export function parseArgs(argv: readonly string[]): SimulationOptions {
  const options: SimulationOptions = { workers: 20, concurrency: 2, runs: 300, inFlight: 0, users: 5, idleSeconds: 60, maxMinutes: 0, adminUrl: null, command: ['true'], json: null };
  const whole = (flag: string, raw: string | undefined, min: number, max: number): number => {
    const number = Number(raw);
    if (raw === undefined || !Number.isInteger(number) || number < min || number > max) {
      throw new Error(`${flag}: expected a whole number from ${min} to ${max}, got ${raw === undefined ? 'nothing' : `"${raw}"`}\n${USAGE}`);
    }
    return number;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i]!;
    const next = () => argv[++i];
    switch (flag) {
      case '--workers':
        options.workers = whole(flag, next(), 1, 200);
        break;
      case '--concurrency':
        options.concurrency = whole(flag, next(), 1, 64);
        break;
      case '--runs':
        options.runs = whole(flag, next(), 1, 100_000);
        break;
      case '--in-flight':
        options.inFlight = whole(flag, next(), 1, 10_000);
        break;
      case '--users':
        options.users = whole(flag, next(), 1, 1000);
        break;
      case '--idle-seconds':
        options.idleSeconds = whole(flag, next(), 5, 3600);
        break;
      case '--max-minutes':
        options.maxMinutes = whole(flag, next(), 1, 24 * 60);
        break;
      case '--admin-url': {
        const raw = next();
        if (raw === undefined || !/^postgres(ql)?:\/\//.test(raw)) throw new Error(`--admin-url: expected a postgres:// URL, got ${raw === undefined ? 'nothing' : `"${raw}"`}\n${USAGE}`);
        options.adminUrl = raw;
        break;
      }
      case '--json': {
        const raw = next();
        if (raw === undefined || raw === '') throw new Error(`--json: expected a file name\n${USAGE}`);
        options.json = raw;
        break;
      }
      case '--':
        if (i + 1 >= argv.length) throw new Error(`--: expected a command after it\n${USAGE}`);
        options.command = argv.slice(i + 1);
        i = argv.length;
        break;
      default:
        throw new Error(`unknown argument "${flag}"\n${USAGE}`);
    }
  }
  // Half the slots by default: every run finds a free slot, so dispatch is measured, not queueing.
  if (options.inFlight === 0) options.inFlight = Math.max(1, Math.floor((options.workers * options.concurrency) / 2));
  return options;
}

// ---------------------------------------------------------------------------------------------------------------
// Figures and the summary

export type StatsDelta = {
  seconds: number;
  /** pg_stat_database of the forgelink database. */
  xactCommit: number;
  tupInserted: number;
  tupUpdated: number;
  tupDeleted: number;
  tupReturned: number;
  /** Statements executed (pg_stat_statements, this database, the observer excluded); null when not loaded. */
  statements: number | null;
  /** WAL written by the whole cluster (a private cluster: this simulation alone). */
  walBytes: number;
  /** Rows inserted/updated/deleted per table (pg_stat_user_tables, every schema). */
  tables: Record<string, { ins: number; upd: number; del: number }>;
  /** The statements executed most often (pg_stat_statements). */
  topStatements: { calls: number; meanMs: number; query: string }[];
};

export type Figures = {
  machine: string;
  options: Omit<SimulationOptions, 'json'>;
  postgres: { version: string; private: boolean; maxConnections: number; poolMaxPerProcess: number };
  idle: StatsDelta & { processes: number };
  load: StatsDelta & { runs: number; succeeded: number; wallSeconds: number };
  /** ms */
  dispatch: { queueToClaim: number[]; queueToSandbox: number[]; queueToAgent: number[]; execution: number[] };
  log: { rowsPerRun: number; textBytesPerRun: number; tableBytesPerRun: number; databaseBytesPerRun: number; pgbossBytes: number };
  memory: { idleWorkerRssMiB: number[]; peakWorkerRssMiB: number[]; rssPerRunningRunMiB: number | null; childRssPerRunningRunMiB: number | null; meanRunning: number };
  connections: { idlePerWorker: number; peakPerWorker: number; peakTotal: number; peakApi: number };
};

export { percentile };

const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

/** What the figures become at `workers` × `concurrency` runs of `runMinutes` each, with `logMiBPerRun` of log. */
export function extrapolate(figures: Figures, model: { workers: number; concurrency: number; runMinutes: number; logMiBPerRun: number }) {
  const { idle, load } = figures;
  const idlePerWorkerS = (value: number) => value / idle.seconds / idle.processes;
  // What the runs added over the idle processes' constant cost during the load phase.
  const perRun = (loadValue: number, idleValue: number) => (loadValue - (idleValue / idle.seconds) * load.seconds) / load.runs;
  const runsPerSecond = (model.workers * model.concurrency) / (model.runMinutes * 60);
  const statementsIdle = idle.statements === null ? null : idlePerWorkerS(idle.statements);
  const statementsRun = idle.statements === null || load.statements === null ? null : perRun(load.statements, idle.statements);
  const rowWrites = (delta: StatsDelta) => delta.tupInserted + delta.tupUpdated + delta.tupDeleted;
  return {
    runsPerSecond,
    statementsPerSecond: statementsIdle === null || statementsRun === null ? null : statementsIdle * model.workers + statementsRun * runsPerSecond,
    statementsIdlePerWorkerS: statementsIdle,
    statementsPerRun: statementsRun,
    transactionsPerSecond: idlePerWorkerS(idle.xactCommit) * model.workers + perRun(load.xactCommit, idle.xactCommit) * runsPerSecond,
    transactionsPerRun: perRun(load.xactCommit, idle.xactCommit),
    transactionsIdlePerWorkerS: idlePerWorkerS(idle.xactCommit),
    rowWritesPerSecond: idlePerWorkerS(rowWrites(idle)) * model.workers + perRun(rowWrites(load), rowWrites(idle)) * runsPerSecond,
    rowWritesPerRun: perRun(rowWrites(load), rowWrites(idle)),
    walBytesPerSecond: idlePerWorkerS(idle.walBytes) * model.workers + perRun(load.walBytes, idle.walBytes) * runsPerSecond,
    walBytesPerRun: perRun(load.walBytes, idle.walBytes),
    walBytesIdlePerWorkerS: idlePerWorkerS(idle.walBytes),
    logBytesPerSecond: model.logMiBPerRun * 1024 * 1024 * runsPerSecond,
    connectionsIdle: figures.connections.idlePerWorker * model.workers,
    connectionsPoolMax: figures.postgres.poolMaxPerProcess * model.workers,
    workerRssGiB:
      figures.memory.rssPerRunningRunMiB === null
        ? null
        : (percentile(figures.memory.idleWorkerRssMiB, 50) + model.concurrency * figures.memory.rssPerRunningRunMiB) / 1024,
  };
}

/** The figures as the lines the script prints. */
export function summarize(figures: Figures): string {
  const { idle, load, dispatch, log, memory, connections } = figures;
  const lines: string[] = [];
  const row = (name: string, value: string, note = '') => lines.push(`${name.padEnd(52)} ${value.padStart(14)}${note ? `   ${note}` : ''}`);
  lines.push(`machine: ${figures.machine}`);
  lines.push(
    `PostgreSQL ${figures.postgres.version} (${figures.postgres.private ? 'private cluster' : 'existing server'}), max_connections ${figures.postgres.maxConnections}; ` +
      `${figures.options.workers} workers × concurrency ${figures.options.concurrency}, 1 serve --no-runs, ${figures.options.users} users, command: ${figures.options.command.join(' ')}`,
  );
  lines.push('');
  lines.push(`idle: ${idle.processes} processes for ${fixed(idle.seconds, 0)} s, no runs`);
  const perIdle = (value: number) => value / idle.seconds / idle.processes;
  if (idle.statements !== null) row('  statements per process per second', fixed(perIdle(idle.statements), 2));
  row('  transactions per process per second', fixed(perIdle(idle.xactCommit), 2));
  row('  rows written per process per second', fixed(perIdle(idle.tupInserted + idle.tupUpdated + idle.tupDeleted), 2));
  row('  WAL bytes per process per second', fixed(perIdle(idle.walBytes), 0));
  lines.push('');
  lines.push(`load: ${load.runs} runs (${load.succeeded} succeeded) in ${fixed(load.wallSeconds, 0)} s, at most ${figures.options.inFlight} submitted at once`);
  row('  throughput', `${fixed(load.runs / load.wallSeconds, 2)} runs/s`);
  const model = extrapolate(figures, { workers: 100, concurrency: 10, runMinutes: 10, logMiBPerRun: 1 });
  const per = (value: number | null, digits = 1) => (value === null ? '-' : fixed(value, digits));
  row('  statements per run (net of idle)', per(model.statementsPerRun));
  row('  transactions per run (net of idle)', per(model.transactionsPerRun));
  row('  rows written per run (net of idle)', per(model.rowWritesPerRun));
  row('  WAL bytes per run (net of idle)', fixed(model.walBytesPerRun, 0));
  row('  run-log rows per run', fixed(log.rowsPerRun));
  row('  run-log text bytes per run', fixed(log.textBytesPerRun, 0));
  row('  run_logs table+index bytes per run', fixed(log.tableBytesPerRun, 0));
  row('  whole database bytes per run', fixed(log.databaseBytesPerRun, 0), `pgboss schema ${fixed(log.pgbossBytes / 1024, 0)} KiB`);
  lines.push('  rows written per table during load (inserted/updated/deleted):');
  for (const [table, counts] of Object.entries(load.tables).filter(([, c]) => c.ins + c.upd + c.del > 0).sort((a, b) => b[1].ins + b[1].upd + b[1].del - (a[1].ins + a[1].upd + a[1].del))) {
    lines.push(`    ${table.padEnd(40)} ${String(counts.ins).padStart(7)} ${String(counts.upd).padStart(7)} ${String(counts.del).padStart(7)}`);
  }
  if (load.topStatements.length > 0) {
    lines.push('  statements executed most often during load (calls, mean ms):');
    for (const statement of load.topStatements) lines.push(`    ${String(statement.calls).padStart(7)} ${fixed(statement.meanMs, 2).padStart(7)}  ${statement.query}`);
  }
  lines.push('');
  const p = (values: number[]) => `${fixed(percentile(values, 50), 0)} / ${fixed(percentile(values, 99), 0)} ms`;
  row('dispatch: queued → claimed by a worker, p50 / p99', p(dispatch.queueToClaim));
  row('dispatch: queued → sandbox ready, p50 / p99', p(dispatch.queueToSandbox));
  row('dispatch: queued → agent started, p50 / p99', p(dispatch.queueToAgent));
  row('execution: claimed → finished, p50 / p99', p(dispatch.execution));
  lines.push('');
  row('worker RSS idle, median (MiB)', fixed(percentile(memory.idleWorkerRssMiB, 50)));
  row('worker RSS peak under load, median / max (MiB)', `${fixed(percentile(memory.peakWorkerRssMiB, 50))} / ${fixed(Math.max(...memory.peakWorkerRssMiB))}`);
  row('worker RSS added per running run (MiB)', per(memory.rssPerRunningRunMiB), `mean ${fixed(memory.meanRunning, 1)} runs executing`);
  row('sandbox processes RSS per running run (MiB)', per(memory.childRssPerRunningRunMiB));
  row('connections per worker idle / peak', `${fixed(connections.idlePerWorker)} / ${fixed(connections.peakPerWorker, 0)}`);
  row('connections peak total (all processes)', fixed(connections.peakTotal, 0), `API process peak ${connections.peakApi}`);
  lines.push('');
  lines.push('extrapolated to 100 workers × 10 concurrent runs, 10-minute runs, 1 MiB of log each (docs/scaling.md):');
  row('  runs started per second', fixed(model.runsPerSecond, 2));
  row('  statements per second', per(model.statementsPerSecond, 0));
  row('  transactions per second', fixed(model.transactionsPerSecond, 0));
  row('  rows written per second', fixed(model.rowWritesPerSecond, 0));
  row('  WAL bytes per second (excluding log text)', fixed(model.walBytesPerSecond, 0));
  row('  run-log bytes per second', fixed(model.logBytesPerSecond, 0));
  row('  connections idle / at pool maximum', `${fixed(model.connectionsIdle, 0)} / ${model.connectionsPoolMax}`, `max_connections ${figures.postgres.maxConnections} here, 100 by default`);
  row('  RSS per worker machine, forgelink process (GiB)', per(model.workerRssGiB, 2));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

type Cluster = { adminUrl: string; private: boolean; stop(): Promise<void> };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function postgresBin(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[])).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no PostgreSQL server binaries under ${root}; install postgresql or pass --admin-url`);
  return path.join(root, versions[0]!, 'bin');
}

/** initdb + pg_ctl in a temp dir (as the postgres user when run as root: initdb refuses root), trust auth on loopback. */
async function startPrivateCluster(maxConnections: number): Promise<Cluster> {
  const bin = await postgresBin();
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-scale-pg-'));
  const asRoot = process.getuid?.() === 0;
  const as = (command: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', command, ...args]) : run(command, args));
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = path.join(dir, 'data');
  await as(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions']);
  const port = await freePort();
  const settings = [
    `-c port=${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c shared_preload_libraries=pg_stat_statements',
    '-c pg_stat_statements.track=all',
    `-c max_connections=${maxConnections}`,
  ].join(' ');
  await as(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-o', settings, 'start']);
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    private: true,
    async stop() {
      await as(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const OBSERVER = 'forgelink_scale_observer';

/** Reads the statistics this simulation compares: the forgelink database's counters, the cluster's WAL position. */
async function snapshot(admin: pg.Client, database: string, db: pg.Client, statements: boolean) {
  const at = performance.now();
  const stats = (await admin.query('SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_returned FROM pg_stat_database WHERE datname = $1', [database])).rows[0];
  const wal = (await admin.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn as string;
  const tables: Record<string, { ins: number; upd: number; del: number }> = {};
  for (const row of (await db.query('SELECT schemaname, relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables')).rows) {
    tables[`${row.schemaname}.${row.relname}`] = { ins: Number(row.n_tup_ins), upd: Number(row.n_tup_upd), del: Number(row.n_tup_del) };
  }
  const byQuery = new Map<string, { calls: number; totalMs: number }>();
  if (statements) {
    const rows = (
      await admin.query(
        `SELECT query, calls, total_exec_time FROM pg_stat_statements
           WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) AND userid <> (SELECT oid FROM pg_roles WHERE rolname = $2)`,
        [database, OBSERVER],
      )
    ).rows;
    for (const row of rows) {
      const query = String(row.query).replace(/\s+/g, ' ');
      const seen = byQuery.get(query) ?? { calls: 0, totalMs: 0 };
      byQuery.set(query, { calls: seen.calls + Number(row.calls), totalMs: seen.totalMs + Number(row.total_exec_time) });
    }
  }
  return {
    at,
    wal,
    xactCommit: Number(stats.xact_commit),
    tupInserted: Number(stats.tup_inserted),
    tupUpdated: Number(stats.tup_updated),
    tupDeleted: Number(stats.tup_deleted),
    tupReturned: Number(stats.tup_returned),
    tables,
    byQuery,
  };
}

type Snapshot = Awaited<ReturnType<typeof snapshot>>;

/** Clears the counters pg_stat_database keeps about itself; the observer's own transactions are counted and subtracted. */
async function delta(admin: pg.Client, before: Snapshot, after: Snapshot, observerTransactions: number, statements: boolean): Promise<StatsDelta> {
  const walBytes = Number((await admin.query('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn) AS bytes', [after.wal, before.wal])).rows[0].bytes);
  const tables: StatsDelta['tables'] = {};
  for (const [name, counts] of Object.entries(after.tables)) {
    const was = before.tables[name] ?? { ins: 0, upd: 0, del: 0 };
    tables[name] = { ins: counts.ins - was.ins, upd: counts.upd - was.upd, del: counts.del - was.del };
  }
  const calls: { calls: number; meanMs: number; query: string }[] = [];
  let total = 0;
  for (const [query, now] of after.byQuery) {
    const was = before.byQuery.get(query) ?? { calls: 0, totalMs: 0 };
    const count = now.calls - was.calls;
    if (count <= 0) continue;
    total += count;
    calls.push({ calls: count, meanMs: (now.totalMs - was.totalMs) / count, query: query.length > 110 ? `${query.slice(0, 107)}…` : query });
  }
  calls.sort((a, b) => b.calls - a.calls);
  return {
    seconds: (after.at - before.at) / 1000,
    xactCommit: after.xactCommit - before.xactCommit - observerTransactions,
    tupInserted: after.tupInserted - before.tupInserted,
    tupUpdated: after.tupUpdated - before.tupUpdated,
    tupDeleted: after.tupDeleted - before.tupDeleted,
    tupReturned: after.tupReturned - before.tupReturned,
    statements: statements ? total : null,
    walBytes,
    tables,
    topStatements: calls.slice(0, 12),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

/** RSS in KiB of `pid` and the sum over its descendants, from /proc. */
async function rssTree(pids: readonly number[]): Promise<Map<number, { own: number; children: number }>> {
  const parents = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const ppid = /^PPid:\s+(\d+)/m.exec(status);
    if (ppid === null) continue;
    parents.set(Number(entry), Number(ppid[1]));
    rss.set(Number(entry), Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0));
  }
  const rootOf = (pid: number): number | null => {
    for (let at: number | undefined = parents.get(pid), hops = 0; at !== undefined && at > 1 && hops < 64; at = parents.get(at), hops += 1) {
      if (pids.includes(at)) return at;
    }
    return null;
  };
  const result = new Map(pids.map((pid) => [pid, { own: rss.get(pid) ?? 0, children: 0 }]));
  for (const [pid, kib] of rss) {
    const root = rootOf(pid);
    if (root !== null) result.get(root)!.children += kib;
  }
  return result;
}

async function call(url: string, apiKey: string, method: string, route: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${url}/api/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: await response.json() };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ENDED = ['succeeded', 'failed', 'canceled', 'timed_out'];

// ---------------------------------------------------------------------------------------------------------------
// The simulation

export async function simulate(options: SimulationOptions, say: (line: string) => void): Promise<Figures> {
  // Before the simulation starts anything: what else the machine is doing (1, 5 and 15 minutes).
  const loadAtStart = loadavg();
  const cleanups: (() => Promise<unknown>)[] = [];
  const processes: RunningServer[] = [];
  const stopAll = async () => {
    for (const child of processes) child.child.kill('SIGKILL');
    await Promise.all(processes.map((child) => child.stop()));
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  };
  let stopSampling = async () => {};
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Room for every process's pool at its maximum (10 each), so the simulation measures connections, not refusals.
    const cluster: Cluster =
      options.adminUrl === null ? await startPrivateCluster(Math.max(100, (options.workers + 2) * 10 + 20)) : { adminUrl: options.adminUrl, private: false, stop: async () => {} };
    cleanups.push(() => cluster.stop());
    say(`PostgreSQL: ${cluster.private ? 'private cluster' : 'existing server'} at ${cluster.adminUrl.replace(/\/\/[^@]*@/, '//')}`);
    const admin = new pg.Client({ connectionString: cluster.adminUrl, application_name: 'simulation-admin' });
    admin.on('error', () => {});
    await admin.connect();
    cleanups.push(() => admin.end());
    const database = `forgelink_scale_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${database}`);
    cleanups.push(() => admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
    const preload = String((await admin.query('SHOW shared_preload_libraries')).rows[0].shared_preload_libraries);
    const statements = preload.includes('pg_stat_statements');
    if (statements) await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    else say('pg_stat_statements is not loaded on this server: statements are not counted (transactions and rows are)');
    const observerExists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [OBSERVER])).rowCount! > 0;
    if (!observerExists) await admin.query(`CREATE ROLE ${OBSERVER} LOGIN SUPERUSER`);
    if (!cluster.private && !observerExists) cleanups.push(() => admin.query(`DROP ROLE IF EXISTS ${OBSERVER}`));
    const version = String((await admin.query('SHOW server_version')).rows[0].server_version);
    const maxConnections = Number((await admin.query('SHOW max_connections')).rows[0].max_connections);
    const dbUrl = new URL(cluster.adminUrl);
    dbUrl.pathname = `/${database}`;
    const observerUrl = new URL(dbUrl);
    observerUrl.username = OBSERVER;

    const gitlab: FakeGitLab = await startFakeGitLab({ tls: true });
    cleanups.push(() => gitlab.close());
    const botId = gitlab.addUser({ username: 'agent-bot' }).id;
    gitlab.addProject({ path: 'acme/api', members: [{ userId: botId, accessLevel: 30 }] });

    const home = await mkdtemp(path.join(tmpdir(), 'forgelink-scale-'));
    cleanups.push(() => rm(home, { recursive: true, force: true }));
    const baseEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      DATABASE_URL: dbUrl.toString(),
      FORGELINK_MASTER_KEY: randomBytes(32).toString('base64'),
      FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
      FORGELINK_MONITOR: 'off',
      FORGELINK_WORKER_CONCURRENCY: String(options.concurrency),
      // The per-user limit is not what this simulation measures: high enough never to hold a run back.
      FORGELINK_RUNS_PER_USER: String(Math.max(4, Math.ceil(options.inFlight / options.users))),
      ...(process.env.NODE_COMPILE_CACHE === undefined ? {} : { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE }),
    };
    const envFor = (name: string): NodeJS.ProcessEnv => ({ ...baseEnv, FORGELINK_DATA_DIR: path.join(home, name), PGAPPNAME: name });

    say('starting forgelink serve --no-runs (it migrates the database)');
    const api = await startServerProcess(envFor('api'), ['--no-runs']);
    processes.push(api);
    const users: { apiKey: string; connectionId: string }[] = [];
    for (let i = 0; i < options.users; i += 1) {
      const added = await forgelinkCli(['admin', 'user', 'add', `user${i}`, '--json'], { env: envFor('admin') });
      if (added.code !== 0) throw new Error(`admin user add failed: ${added.stderr}`);
      const apiKey: string = JSON.parse(added.stdout).apiKey;
      const token = gitlab.addToken(botId, { scopes: ['read_repository'], expiresAt: '2099-01-31' });
      const connection = await call(api.url, apiKey, 'POST', '/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
      if (connection.status !== 201) throw new Error(`POST /connections: ${connection.status} ${JSON.stringify(connection.json)}`);
      users.push({ apiKey, connectionId: connection.json.id });
    }

    say(`starting ${options.workers} workers (concurrency ${options.concurrency} each)`);
    const workers: { name: string; process: RunningServer; id: string }[] = [];
    for (let i = 0; i < options.workers; i += 4) {
      const batch = Array.from({ length: Math.min(4, options.workers - i) }, (_, k) => `worker-${String(i + k + 1).padStart(3, '0')}`);
      const started = await Promise.all(batch.map(async (name) => ({ name, process: await startWorkerProcess(envFor(name)) })));
      for (const entry of started) {
        processes.push(entry.process);
        workers.push({ ...entry, id: (await readFile(path.join(home, entry.name, 'worker-id'), 'utf8')).trim() });
      }
    }
    const pids = workers.map((worker) => worker.process.child.pid!);

    const observer = new pg.Client({ connectionString: observerUrl.toString(), application_name: 'simulation-observer' });
    observer.on('error', () => {});
    await observer.connect();
    cleanups.push(() => observer.end());
    let observerTransactions = 0;
    const observe = async (text: string, values: unknown[] = []) => {
      observerTransactions += 1;
      return (await observer.query(text, values)).rows;
    };

    // Connections per process, sampled from pg_stat_activity (each process names itself through PGAPPNAME).
    const connectionSamples: Map<string, number>[] = [];
    const sampleConnections = async () => {
      const rows = (await admin.query('SELECT application_name, count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 GROUP BY 1', [database])).rows;
      connectionSamples.push(new Map(rows.map((row) => [String(row.application_name), Number(row.n)])));
    };

    say(`idle: ${options.idleSeconds} s with ${options.workers} workers and the API process, no runs`);
    await sleep(5000);
    const idleRss: number[][] = [];
    const idleBefore = await snapshot(admin, database, observer, statements);
    observerTransactions = 0;
    // The snapshot's own pg_stat_user_tables query is the observer's one transaction.
    observerTransactions += 1;
    const idleSamplesFrom = connectionSamples.length;
    const idleEnd = Date.now() + options.idleSeconds * 1000;
    while (Date.now() < idleEnd) {
      await sampleConnections();
      const tree = await rssTree(pids);
      idleRss.push(pids.map((pid) => tree.get(pid)!.own / 1024));
      await sleep(1000);
    }
    const idleAfter = await snapshot(admin, database, observer, statements);
    const idle = await delta(admin, idleBefore, idleAfter, observerTransactions, statements);
    const idleConnections = connectionSamples.slice(idleSamplesFrom);

    say(`load: ${options.runs} runs of \`${options.command.join(' ')}\`, at most ${options.inFlight} at once`);
    const loadSamplesFrom = connectionSamples.length;
    const loadBefore = await snapshot(admin, database, observer, statements);
    observerTransactions = 1;
    const started = performance.now();
    const pending = new Set<string>();
    const memorySamples: { at: number; rss: Map<number, { own: number; children: number }> }[] = [];
    let submitted = 0;
    let submitFailures = 0;
    let ended = 0;
    let lastSay = Date.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        memorySamples.push({ at: Date.now(), rss: await rssTree(pids) });
        await sampleConnections();
        await sleep(500);
      }
    })().catch((error: unknown) => say(`  sampling stopped: ${String(error)}`));
    stopSampling = async () => {
      sampling = false;
      await sampler;
    };
    const deadline = options.maxMinutes === 0 ? Number.POSITIVE_INFINITY : Date.now() + options.maxMinutes * 60_000;
    let target = options.runs;
    while (ended < target) {
      if (Date.now() > deadline && target > submitted) {
        target = submitted;
        say(`  --max-minutes reached: no new runs; waiting for the ${pending.size} submitted`);
      }
      const room = Math.min(options.inFlight - pending.size, target - submitted);
      await Promise.all(
        Array.from({ length: room }, async () => {
          const user = users[submitted % users.length]!;
          submitted += 1;
          // A refused or failed submission is counted and reported, not fatal: the figures of the runs that did start stand.
          const made = await call(api.url, user.apiKey, 'POST', '/runs', { connectionId: user.connectionId, project: 'acme/api', command: options.command }).catch(
            (error: unknown) => ({ status: 0, json: { error: String(error) } }),
          );
          if (made.status !== 201) {
            submitFailures += 1;
            if (submitFailures <= 5) say(`  POST /runs: ${made.status} ${JSON.stringify(made.json)}`);
            submitted -= 1;
            return;
          }
          pending.add(made.json.id);
        }),
      );
      await sleep(200);
      if (submitFailures > options.runs / 10) throw new Error(`${submitFailures} runs could not be submitted`);
      if (pending.size > 0) {
        const done = await observe('SELECT id FROM runs WHERE id = ANY($1) AND status = ANY($2)', [[...pending], ENDED]);
        for (const row of done) pending.delete(String(row.id));
        ended += done.length;
      }
      if (Date.now() - lastSay > 15_000) {
        say(`  ${ended}/${target} runs ended`);
        lastSay = Date.now();
      }
    }
    const wallSeconds = (performance.now() - started) / 1000;
    await stopSampling();
    // The last runs' closing writes (queue settle, audit) land just after their status does.
    await sleep(1000);
    const loadAfter = await snapshot(admin, database, observer, statements);
    const load = await delta(admin, loadBefore, loadAfter, observerTransactions, statements);
    const loadConnections = connectionSamples.slice(loadSamplesFrom);

    // Per-run timings, straight from the runs table and the log lines the pipeline writes at each step.
    const runRows = await observe(
      `SELECT r.id, r.status, r.worker_id AS worker, r.created_at, r.started_at, r.finished_at,
              (SELECT min(l.at) FROM run_logs l WHERE l.run_id = r.id AND l.text LIKE 'Sandbox ready%') AS sandbox_at,
              (SELECT min(l.at) FROM run_logs l WHERE l.run_id = r.id AND l.text LIKE 'Running%') AS agent_at
         FROM runs r`,
    );
    const ms = (from: unknown, to: unknown) => Date.parse(String(to)) - Date.parse(String(from));
    const withTimes = runRows.filter((row) => row.started_at !== null && row.finished_at !== null);
    const dispatch = {
      queueToClaim: withTimes.map((row) => ms(row.created_at, row.started_at)),
      queueToSandbox: withTimes.filter((row) => row.sandbox_at !== null).map((row) => ms(row.created_at, row.sandbox_at)),
      queueToAgent: withTimes.filter((row) => row.agent_at !== null).map((row) => ms(row.created_at, row.agent_at)),
      execution: withTimes.map((row) => ms(row.started_at, row.finished_at)),
    };
    const logRow = (
      await observe(
        `SELECT count(*)::float8 AS rows, coalesce(sum(octet_length(text)), 0)::float8 AS bytes,
                pg_total_relation_size('run_logs')::float8 AS table_bytes, pg_database_size(current_database())::float8 AS db_bytes,
                (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'pgboss' AND c.relkind = 'r')::float8 AS pgboss_bytes
           FROM run_logs`,
      )
    )[0]!;
    const runCount = runRows.length;

    // Memory: each sample's running runs from the runs' own timestamps, per worker.
    const idOfPid = new Map(workers.map((worker) => [worker.process.child.pid!, worker.id]));
    const idleMedian = new Map(pids.map((pid, index) => [pid, percentile(idleRss.map((sample) => sample[index]!), 50)]));
    let addedMiB = 0;
    let childMiB = 0;
    let runningTotal = 0;
    let samplesWithRuns = 0;
    for (const sample of memorySamples) {
      let running = 0;
      let added = 0;
      let children = 0;
      for (const pid of pids) {
        const id = idOfPid.get(pid);
        const mine = withTimes.filter((row) => row.worker === id && Date.parse(row.started_at) <= sample.at && sample.at < Date.parse(row.finished_at)).length;
        running += mine;
        const rss = sample.rss.get(pid)!;
        added += rss.own / 1024 - idleMedian.get(pid)!;
        children += rss.children / 1024;
      }
      if (running === 0) continue;
      samplesWithRuns += 1;
      runningTotal += running;
      addedMiB += added;
      childMiB += children;
    }
    const peakPerWorker = (samples: Map<string, number>[]) =>
      Math.max(0, ...samples.flatMap((sample) => [...sample].filter(([name]) => name.startsWith('worker-')).map(([, n]) => n)));
    const meanPerWorker = (samples: Map<string, number>[]) =>
      samples.length === 0
        ? 0
        : samples.reduce((sum, sample) => sum + [...sample].filter(([name]) => name.startsWith('worker-')).reduce((s, [, n]) => s + n, 0), 0) / samples.length / options.workers;
    const total = (sample: Map<string, number>) => [...sample].filter(([name]) => name.startsWith('worker-') || name === 'api').reduce((s, [, n]) => s + n, 0);

    const { json: _json, ...shown } = options;
    return {
      machine: `${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), ${fixed(totalmem() / 1024 ** 3, 0)} GiB, Node ${process.version}, load average ${loadAtStart.map((value) => fixed(value, 2)).join(' / ')} at start (1, 5, 15 min)`,
      options: shown,
      postgres: { version, private: cluster.private, maxConnections, poolMaxPerProcess: 10 },
      idle: { ...idle, processes: options.workers + 1 },
      load: { ...load, runs: runCount, succeeded: runRows.filter((row) => row.status === 'succeeded').length, wallSeconds },
      dispatch,
      log: {
        rowsPerRun: Number(logRow.rows) / runCount,
        textBytesPerRun: Number(logRow.bytes) / runCount,
        tableBytesPerRun: Number(logRow.table_bytes) / runCount,
        databaseBytesPerRun: Number(logRow.db_bytes) / runCount,
        pgbossBytes: Number(logRow.pgboss_bytes),
      },
      memory: {
        idleWorkerRssMiB: [...idleMedian.values()],
        peakWorkerRssMiB: pids.map((pid) => Math.max(...memorySamples.map((sample) => sample.rss.get(pid)!.own / 1024))),
        rssPerRunningRunMiB: runningTotal === 0 ? null : addedMiB / runningTotal,
        childRssPerRunningRunMiB: runningTotal === 0 ? null : childMiB / runningTotal,
        meanRunning: samplesWithRuns === 0 ? 0 : runningTotal / samplesWithRuns,
      },
      connections: {
        idlePerWorker: meanPerWorker(idleConnections),
        peakPerWorker: peakPerWorker(loadConnections),
        peakTotal: Math.max(0, ...loadConnections.map(total)),
        peakApi: Math.max(0, ...loadConnections.map((sample) => sample.get('api') ?? 0)),
      },
    };
  } catch (error) {
    say(`simulation failed: ${error instanceof Error ? error.stack : String(error)}`);
    throw error;
  } finally {
    await stopSampling();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { writeFile } = await import('node:fs/promises');
  const argv = process.argv.slice(2);
  // `--from-json FILE`: prints the summary of figures an earlier run saved with --json.
  if (argv[0] === '--from-json' && argv[1] !== undefined) {
    process.stdout.write(`${summarize(JSON.parse(await readFile(argv[1], 'utf8')) as Figures)}\n`);
    process.exit(0);
  }
  let options: SimulationOptions;
  try {
    options = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  const say = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const figures = await simulate(options, say);
  // Saved before the summary is printed: the figures outlive a mistake in printing them.
  if (options.json !== null) await writeFile(options.json, `${JSON.stringify(figures, null, 2)}\n`);
  process.stdout.write(`forgelink scale simulation — ${new Date().toISOString()}\n${summarize(figures)}\n`);
}
