import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ConflictError, IN_FLIGHT_STATUSES, NotFoundError, TERMINAL_STATUSES } from '../core/index.ts';
import type { Run, RunLogEntry, RunStore } from '../core/index.ts';
import { isUniqueViolation } from './constraint-errors.ts';
import { logEntryFromRow, runFromRow, runPatchToRow, runToRow } from './run-rows.ts';
import type { RunPatch } from './run-rows.ts';
import type { DatabaseSchema } from './tables.ts';

const DEFAULT_LIST_LIMIT = 50;
const MAX_LIST_LIMIT = 500;
const INSERT_BATCH = 1000;

type NewLogEntry = Omit<RunLogEntry, 'seq'>;
type Executor = Kysely<DatabaseSchema> | Transaction<DatabaseSchema>;

/**
 * Runs and their logs. Lookups on behalf of a user filter by that user's id, so another user's run reads like a
 * missing one. `kind` picks how log appends are serialized across processes.
 */
export function createRunStore(db: Kysely<DatabaseSchema>, kind: 'sqlite' | 'postgres'): RunStore {
  async function runById(id: string): Promise<Run | null> {
    const row = await db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? null : runFromRow(row);
  }

  return {
    async createRun(run) {
      try {
        await db.insertInto('runs').values(runToRow(run)).execute();
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        throw new ConflictError('run_conflict', 'A run with this id already exists.', { cause: error });
      }
    },

    async getRun(userId, id) {
      const row = await db
        .selectFrom('runs')
        .selectAll()
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row === undefined ? null : runFromRow(row);
    },

    async listRuns(userId, options = {}) {
      const limit = Math.min(Math.max(Math.trunc(options.limit ?? DEFAULT_LIST_LIMIT), 1), MAX_LIST_LIMIT);
      const rows = await db
        .selectFrom('runs')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map(runFromRow);
    },

    getRunById: runById,

    async updateRun(id, patch: RunPatch) {
      const changes = runPatchToRow(patch);
      if (Object.keys(changes).length === 0) {
        const run = await runById(id);
        if (run === null) throw runNotFound(id);
        return run;
      }
      const row = await db.updateTable('runs').set(changes).where('id', '=', id).returningAll().executeTakeFirst();
      if (row === undefined) throw runNotFound(id);
      return runFromRow(row);
    },

    async countRunsByStatus() {
      const rows = await db.selectFrom('runs').select(['status', (eb) => eb.fn.countAll<number | string | bigint>().as('count')]).groupBy('status').execute();
      return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
    },
    async listRunsByStatus(statuses) {
      if (statuses.length === 0) return [];
      const rows = await db
        .selectFrom('runs')
        .selectAll()
        .where('status', 'in', [...statuses])
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(runFromRow);
    },

    async appendLog(runId, entries) {
      if (entries.length === 0) return;
      if (kind === 'postgres') {
        await db.transaction().execute(async (trx) => {
          // The run's row lock serializes appenders of one run across every process and pool connection;
          // appenders of other runs do not wait. A plain max(seq)+1 under READ COMMITTED would hand two
          // concurrent appenders the same numbers.
          const run = await trx.selectFrom('runs').select('id').where('id', '=', runId).forUpdate().executeTakeFirst();
          if (run === undefined) throw runNotFound(runId);
          await insertAfterLast(trx, runId, entries);
        });
        return;
      }
      // SQLite: BEGIN IMMEDIATE takes the database's write lock before reading max(seq) (waiting up to the busy
      // timeout for another process to finish), so no other writer can slip in between the read and the insert.
      // Kysely's `transaction()` issues a deferred BEGIN, which would only take the lock at the insert. The
      // dialect has one connection per process; `connection()` keeps it ours until COMMIT.
      await db.connection().execute(async (connection) => {
        await sql`begin immediate`.execute(connection);
        try {
          const run = await connection.selectFrom('runs').select('id').where('id', '=', runId).executeTakeFirst();
          if (run === undefined) throw runNotFound(runId);
          await insertAfterLast(connection, runId, entries);
          await sql`commit`.execute(connection);
        } catch (error) {
          await sql`rollback`.execute(connection);
          throw error;
        }
      });
    },

    async claimRun(id, worker, at) {
      const row = await db
        .updateTable('runs')
        .set({ status: 'preparing', worker_id: worker, started_at: at })
        .where('id', '=', id)
        .where('status', '=', 'queued')
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : runFromRow(row);
    },

    async updateOwnedRun(id, worker, patch: RunPatch) {
      const row = await db
        .updateTable('runs')
        .set(runPatchToRow(patch))
        .where('id', '=', id)
        .where('worker_id', '=', worker)
        .where('status', 'not in', [...TERMINAL_STATUSES])
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : runFromRow(row);
    },

    async updateQueuedRun(id, patch: RunPatch) {
      const row = await db
        .updateTable('runs')
        .set(runPatchToRow(patch))
        .where('id', '=', id)
        .where('status', '=', 'queued')
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : runFromRow(row);
    },

    async listWorkerRuns(worker) {
      const rows = await db
        .selectFrom('runs')
        .selectAll()
        .where('worker_id', '=', worker)
        .where('status', 'in', [...IN_FLIGHT_STATUSES])
        .orderBy('created_at')
        .execute();
      return rows.map(runFromRow);
    },

    async requestCancel(id, at) {
      await db.updateTable('runs').set({ cancel_requested_at: at }).where('id', '=', id).where('cancel_requested_at', 'is', null).execute();
    },

    async listCancelRequests(worker) {
      const rows = await db
        .selectFrom('runs')
        .select('id')
        .where('worker_id', '=', worker)
        .where('cancel_requested_at', 'is not', null)
        .where('status', 'in', [...IN_FLIGHT_STATUSES])
        .execute();
      return rows.map((row) => row.id);
    },

    async readLog(runId, afterSeq = 0) {
      const rows = await db
        .selectFrom('run_logs')
        .selectAll()
        .where('run_id', '=', runId)
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .execute();
      return rows.map(logEntryFromRow);
    },
  };
}

/** Inserts `entries` numbered on from the run's last seq; the caller holds the lock that makes this safe. */
async function insertAfterLast(executor: Executor, runId: string, entries: readonly NewLogEntry[]): Promise<void> {
  const last = await executor
    .selectFrom('run_logs')
    .select((eb) => eb.fn.max('seq').as('last'))
    .where('run_id', '=', runId)
    .executeTakeFirst();
  const base = last?.last == null ? 0 : Number(last.last);
  const rows = entries.map((entry, index) => ({
    run_id: runId,
    seq: base + index + 1,
    at: entry.at,
    stream: entry.stream,
    text: withoutNul(entry.text),
  }));
  // Both databases cap the parameters of one statement (SQLite 32,766, PostgreSQL 65,535).
  for (let start = 0; start < rows.length; start += INSERT_BATCH) {
    await executor.insertInto('run_logs').values(rows.slice(start, start + INSERT_BATCH)).execute();
  }
}

/**
 * PostgreSQL's text type cannot hold U+0000 (it refuses the whole insert), and agents do print binary. Both
 * databases store U+FFFD instead, so a log reads the same on either.
 */
function withoutNul(text: string): string {
  return text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text;
}

function runNotFound(id: string): NotFoundError {
  return new NotFoundError('run_not_found', `There is no run ${id}.`);
}
