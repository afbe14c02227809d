import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { PgBoss, type Db } from 'pg-boss';
import type { QueuedRun, RunQueue, TakenRun } from '../core/index.ts';

/** The pg-boss queue runs wait in; its tables live in the `pgboss` schema of forgelink's database. */
export const RUN_QUEUE = 'forgelink-runs';

/**
 * `take` holds this transaction-scoped advisory lock while pg-boss fetches, so takes run one at a time across
 * every worker. pg-boss counts a group's active jobs in the same statement that marks new ones active; two
 * concurrent fetches could each see the other's user below the limit (pg-boss documents this race). Taken one at a
 * time, each fetch sees every earlier one committed, and `FORGELINK_RUNS_PER_USER` holds exactly. A fetch is one
 * short statement, so the serialization costs little next to a run.
 */
const TAKE_LOCK = 7_461_726_701;

/** A job's longest life while a worker holds it: pg-boss's maximum; runs end long before (FORGELINK_RUN_MAX_TIMEOUT). */
const EXPIRE_SECONDS = 24 * 3600;

type JobData = { runId: string; userId: string };

let lastMs = 0;
let sequence = 0;

/**
 * A UUIDv7 (RFC 9562): the time in milliseconds first, then a counter, then random bits, so ids sort in the order
 * jobs were made. pg-boss picks among one user's waiting jobs by id; with these ids that is oldest first.
 */
function timeOrderedId(): string {
  const now = Date.now();
  sequence = now === lastMs ? sequence + 1 : 0;
  lastMs = now;
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | ((sequence >> 8) & 0x0f);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function adapter(executor: { query(text: string, values?: unknown[]): Promise<{ rows: any[] }> }): Db {
  return { executeSql: (text, values) => executor.query(text, values as unknown[]) };
}

/**
 * The run queue on PostgreSQL, through pg-boss (docs/architecture.md, "The queue"): a run is a job whose group is
 * its user, so pg-boss's `groupConcurrency` is the per-user limit; `fetch` (FOR UPDATE SKIP LOCKED) hands a job to
 * exactly one worker, oldest first. No retries: a run is never executed twice, and a worker lost mid-run ends its
 * runs `worker_lost` (runs/worker.ts), not again.
 */
export function createPgRunQueue(options: { pool: pg.Pool; runsPerUser: number; onError?: (error: unknown) => void }): RunQueue {
  const { pool, runsPerUser } = options;
  const boss = new PgBoss({
    db: adapter(pool),
    // Cron schedules are not used; maintenance (archiving, expiry) runs in every process under pg-boss's own locks.
    schedule: false,
  });
  boss.on('error', (error) => options.onError?.(error));
  // Started on first use: a process that never queues or takes a run (an admin command's) leaves pg-boss alone.
  // A failed start is tried again by the next call rather than remembered.
  let started: Promise<void> | null = null;
  let closed = false;
  async function init(): Promise<void> {
    // Several processes starting on a fresh database: all but one wait for the one installing pg-boss's schema.
    await boss.start({ attempts: 10 });
    // Processes starting together race to create the queue; pg-boss creates it under an advisory lock.
    for (let attempt = 1; (await boss.getQueue(RUN_QUEUE)) === null; attempt += 1) {
      try {
        await boss.createQueue(RUN_QUEUE, { retryLimit: 0, expireInSeconds: EXPIRE_SECONDS });
      } catch (error) {
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }
  const ready = () => {
    started ??= init().catch((error: unknown) => {
      started = null;
      throw error;
    });
    return started;
  };

  async function jobsOf(runId: string, queued: boolean) {
    await ready();
    return boss.findJobs<JobData>(RUN_QUEUE, { data: { runId }, ...(queued ? { queued: true } : {}) });
  }

  return {
    kind: 'postgres',

    async enqueue(run: QueuedRun) {
      await ready();
      await boss.send(RUN_QUEUE, { runId: run.runId, userId: run.userId }, { id: timeOrderedId(), group: { id: run.userId } });
    },

    async take(max) {
      if (max < 1 || closed) return [];
      await ready();
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [TAKE_LOCK]);
        const jobs = await boss.fetch<JobData>(RUN_QUEUE, { batchSize: max, groupConcurrency: runsPerUser, db: adapter(client) });
        await client.query('COMMIT');
        return jobs.map((job) => ({ runId: job.data.runId, userId: job.data.userId, ticket: job.id }));
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },

    async settle(taken: TakenRun) {
      await ready();
      await boss.complete(RUN_QUEUE, taken.ticket);
    },

    async putBack(taken: TakenRun) {
      await ready();
      // A new job for the run, then the old one completed: at worst the run is queued twice for a moment, and
      // the second worker to take it finds it no longer queued (RunStore.claimRun) and drops that job.
      await boss.send(RUN_QUEUE, { runId: taken.runId, userId: taken.userId }, { id: timeOrderedId(), group: { id: taken.userId } });
      await boss.complete(RUN_QUEUE, taken.ticket);
    },

    async remove(runId) {
      const ids = (await jobsOf(runId, true)).map((job) => job.id);
      if (ids.length > 0) await boss.cancel(RUN_QUEUE, ids);
    },

    async abandon(runIds) {
      for (const runId of runIds) {
        const active = (await jobsOf(runId, false)).filter((job) => job.state === 'active').map((job) => job.id);
        if (active.length > 0) await boss.fail(RUN_QUEUE, active, { reason: 'worker_lost' });
      }
    },

    async depth() {
      await ready();
      const queue = await boss.getQueue(RUN_QUEUE);
      return queue?.queuedCount ?? 0;
    },

    async close() {
      closed = true;
      if (started === null) return;
      await started.catch(() => {});
      await boss.stop({ graceful: false, close: false });
    },
  };
}
