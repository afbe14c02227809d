import type { Kysely } from 'kysely';
import type { AuditEntry, AuditStore } from '../core/index.ts';
import { DetailsJson } from './schema.ts';
import type { DatabaseSchema } from './tables.ts';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** The audit trail: appended to, never updated. */
export function createAuditStore(db: Kysely<DatabaseSchema>): AuditStore {
  return {
    async record(entry) {
      await db
        .insertInto('audit_events')
        .values({
          id: entry.id,
          at: entry.at,
          owner_id: entry.ownerId,
          actor: entry.actor,
          action: entry.action,
          connection_id: entry.connectionId,
          run_id: entry.runId,
          reason: entry.reason,
          details: JSON.stringify(entry.details),
        })
        .execute();
    },

    async list(filter) {
      const limit = Math.min(Math.max(filter.limit ?? DEFAULT_LIMIT, 1), MAX_LIMIT);
      let query = db.selectFrom('audit_events').selectAll();
      if (filter.ownerId !== null) query = query.where('owner_id', '=', filter.ownerId);
      if (filter.connectionId !== undefined) query = query.where('connection_id', '=', filter.connectionId);
      const rows = await query.orderBy('at', 'desc').orderBy('id', 'desc').limit(limit).execute();
      return rows.map(
        (row): AuditEntry => ({
          id: row.id,
          at: row.at,
          ownerId: row.owner_id,
          actor: row.actor,
          action: row.action as AuditEntry['action'],
          connectionId: row.connection_id,
          runId: row.run_id,
          reason: row.reason,
          details: DetailsJson.parse(JSON.parse(row.details)),
        }),
      );
    },
  };
}
