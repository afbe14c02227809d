import type { Kysely, Selectable } from 'kysely';
import type { WorkerRecord, WorkerStore } from '../core/index.ts';
import type { DatabaseSchema, WorkersTable } from './tables.ts';

function workerFromRow(row: Selectable<WorkersTable>): WorkerRecord {
  return {
    id: row.id,
    host: row.host,
    pid: Number(row.pid),
    capacity: Number(row.capacity),
    running: Number(row.running),
    state: row.state === 'draining' ? 'draining' : 'running',
    startedAt: row.started_at,
    lastHeartbeatAt: row.last_heartbeat_at,
  };
}

/**
 * The workers table (migration 0011). Times are ISO text from each process's clock, as leases are (storage/leases.ts):
 * machines sharing a database keep their clocks in sync (NTP), which FORGELINK_WORKER_LOST_AFTER dwarfs.
 */
export function createWorkerStore(db: Kysely<DatabaseSchema>): WorkerStore {
  return {
    async register(worker) {
      const row = {
        id: worker.id,
        host: worker.host,
        pid: worker.pid,
        capacity: worker.capacity,
        running: worker.running,
        state: worker.state,
        started_at: worker.startedAt,
        last_heartbeat_at: worker.lastHeartbeatAt,
      };
      await db
        .insertInto('workers')
        .values(row)
        .onConflict((conflict) => conflict.column('id').doUpdateSet(row))
        .execute();
    },

    async heartbeat(id, beat) {
      const result = await db
        .updateTable('workers')
        .set({ running: beat.running, state: beat.state, last_heartbeat_at: beat.at })
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async remove(id) {
      await db.deleteFrom('workers').where('id', '=', id).execute();
    },

    async list() {
      return (await db.selectFrom('workers').selectAll().orderBy('id').execute()).map(workerFromRow);
    },

    async claimLost(staleBefore) {
      // One DELETE … RETURNING: a row is deleted, and so returned, by exactly one of the processes racing for it.
      const rows = await db.deleteFrom('workers').where('last_heartbeat_at', '<', staleBefore).returningAll().execute();
      return rows.map(workerFromRow);
    },
  };
}
