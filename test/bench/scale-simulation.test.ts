import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extrapolate, parseArgs, percentile, summarize, type Figures } from '../../bench/scale-simulation.ts';

/** The argument parsing and arithmetic of `npm run bench:scale` (docs/scaling.md); the simulation itself is a bench. */

test('defaults: 20 workers of concurrency 2, 300 runs of `true`, half the slots in flight', () => {
  const options = parseArgs([]);
  assert.deepEqual(options, { workers: 20, concurrency: 2, runs: 300, inFlight: 20, users: 5, idleSeconds: 60, maxMinutes: 0, adminUrl: null, command: ['true'], json: null });
});

test('flags and the command after --', () => {
  const options = parseArgs(['--workers', '24', '--concurrency', '1', '--runs', '50', '--in-flight', '5', '--admin-url', 'postgres://postgres@127.0.0.1:5432/postgres', '--', 'echo', 'hi']);
  assert.equal(options.workers, 24);
  assert.equal(options.concurrency, 1);
  assert.equal(options.runs, 50);
  assert.equal(options.inFlight, 5);
  assert.equal(options.adminUrl, 'postgres://postgres@127.0.0.1:5432/postgres');
  assert.deepEqual(options.command, ['echo', 'hi']);
});

test('bad input names the flag', () => {
  assert.throws(() => parseArgs(['--workers', '0']), /^Error: --workers: expected a whole number from 1 to 200, got "0"/);
  assert.throws(() => parseArgs(['--runs']), /^Error: --runs: expected a whole number from 1 to 100000, got nothing/);
  assert.throws(() => parseArgs(['--admin-url', 'mysql://x']), /^Error: --admin-url: expected a postgres:\/\/ URL/);
  assert.throws(() => parseArgs(['--fast']), /^Error: unknown argument "--fast"/);
  assert.throws(() => parseArgs(['--']), /^Error: --: expected a command after it/);
});

test('percentile: nearest rank', () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile([7], 99), 7);
});

function figures(): Figures {
  const empty = { tupReturned: 0, tables: {}, topStatements: [] };
  return {
    machine: 'test',
    options: { workers: 2, concurrency: 1, runs: 10, inFlight: 1, users: 1, idleSeconds: 10, maxMinutes: 0, adminUrl: null, command: ['true'] },
    postgres: { version: '15', private: true, maxConnections: 100, poolMaxPerProcess: 10 },
    // 2 processes for 10 s: 40 statements, 20 transactions, 10 row writes, 2000 WAL bytes → per process per second 2, 1, 0.5, 100.
    idle: { ...empty, seconds: 10, processes: 2, xactCommit: 20, tupInserted: 0, tupUpdated: 10, tupDeleted: 0, statements: 40, walBytes: 2000 },
    // 10 runs in 5 s: the idle cost for 5 s is half the idle phase's, the rest is the runs'.
    load: { ...empty, seconds: 5, runs: 10, succeeded: 10, wallSeconds: 5, xactCommit: 110, tupInserted: 50, tupUpdated: 5, tupDeleted: 0, statements: 520, walBytes: 11_000 },
    dispatch: { queueToClaim: [10, 20], queueToSandbox: [30, 40], queueToAgent: [50, 60], execution: [100, 200] },
    log: { rowsPerRun: 9, textBytesPerRun: 900, tableBytesPerRun: 2000, databaseBytesPerRun: 50_000, pgbossBytes: 8192 },
    memory: { idleWorkerRssMiB: [100, 120], peakWorkerRssMiB: [130, 150], rssPerRunningRunMiB: 8, childRssPerRunningRunMiB: 20, meanRunning: 1 },
    connections: { idlePerWorker: 1.5, peakPerWorker: 4, peakTotal: 9, peakApi: 2 },
  };
}

test('extrapolate: per-run figures are net of the idle cost, scaled to the model', () => {
  const model = extrapolate(figures(), { workers: 100, concurrency: 10, runMinutes: 10, logMiBPerRun: 1 });
  assert.equal(model.statementsIdlePerWorkerS, 2);
  assert.equal(model.statementsPerRun, 50); // (520 − 40 × 5/10) / 10
  assert.equal(model.transactionsPerRun, 10); // (110 − 20 × 5/10) / 10
  assert.equal(model.rowWritesPerRun, 5); // (55 − 10 × 5/10) / 10
  assert.equal(model.walBytesPerRun, 1000); // (11000 − 2000 × 5/10) / 10
  assert.equal(model.runsPerSecond, 1000 / 600);
  assert.equal(model.statementsPerSecond, 2 * 100 + 50 * (1000 / 600));
  assert.equal(model.connectionsIdle, 150);
  assert.equal(model.connectionsPoolMax, 1000);
  assert.equal(model.workerRssGiB, (100 + 10 * 8) / 1024); // nearest-rank median of [100, 120] is 100
});

test('summary prints the measured and the extrapolated figures', () => {
  const text = summarize(figures());
  assert.match(text, /statements per process per second\s+2\.00/);
  assert.match(text, /statements per run \(net of idle\)\s+50\.0/);
  assert.match(text, /dispatch: queued → sandbox ready, p50 \/ p99\s+30 \/ 40 ms/);
  assert.match(text, /connections idle \/ at pool maximum\s+150 \/ 1000/);
});
