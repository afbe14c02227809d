import type { Kysely, Selectable, Transaction } from 'kysely';
import { newId } from '../core/index.ts';
import type { ConnectionEvent, ConnectionEventStore, ConnectionStatus } from '../core/index.ts';
import { ConnectionStatusColumn } from './schema.ts';
import type { ConnectionEventsTable, DatabaseSchema } from './tables.ts';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 500;

type Executor = Kysely<DatabaseSchema> | Transaction<DatabaseSchema>;

/**
 * Writes one status transition; the connection store calls it in the transaction that changes the status, so a
 * transition is recorded exactly when it happened and never without it.
 */
export async function recordTransition(
  executor: Executor,
  change: { connectionId: string; ownerId: string; at: string; from: ConnectionStatus; to: ConnectionStatus; reason: string | null },
): Promise<void> {
  await executor
    .insertInto('connection_events')
    .values({
      id: newId('cev'),
      connection_id: change.connectionId,
      owner_id: change.ownerId,
      at: change.at,
      from_status: change.from,
      to_status: change.to,
      reason: change.reason,
      notified_at: null,
    })
    .execute();
}

/** Status transitions and sent notices (migration 0006). */
export function createConnectionEventStore(db: Kysely<DatabaseSchema>): ConnectionEventStore {
  return {
    async list(ownerId, connectionId, options = {}) {
      const rows = await db
        .selectFrom('connection_events')
        .selectAll()
        .where('owner_id', '=', ownerId)
        .where('connection_id', '=', connectionId)
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(clampLimit(options.limit))
        .execute();
      return rows.map(eventFromRow);
    },

    async unnotified(since, options = {}) {
      const rows = await db
        .selectFrom('connection_events')
        .selectAll()
        .where('notified_at', 'is', null)
        .where('at', '>=', since)
        .orderBy('at')
        .orderBy('id')
        .limit(clampLimit(options.limit ?? MAX_LIMIT))
        .execute();
      return rows.map(eventFromRow);
    },

    async claimNotification(eventId, at) {
      // Conditional, like oauth_states' single use: of racing claimers exactly one sees a row change.
      const result = await db
        .updateTable('connection_events')
        .set({ notified_at: at })
        .where('id', '=', eventId)
        .where('notified_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async claimNotice(connectionId, key, at) {
      const inserted = await db
        .insertInto('connection_notices')
        .values({ connection_id: connectionId, notice: key, at })
        .onConflict((conflict) => conflict.columns(['connection_id', 'notice']).doNothing())
        .executeTakeFirst();
      return (inserted.numInsertedOrUpdatedRows ?? 0n) > 0n;
    },
  };
}

function clampLimit(limit: number | undefined): number {
  return Math.min(Math.max(Math.trunc(limit ?? DEFAULT_LIMIT), 1), MAX_LIMIT);
}

function eventFromRow(row: Selectable<ConnectionEventsTable>): ConnectionEvent {
  return {
    id: row.id,
    connectionId: row.connection_id,
    ownerId: row.owner_id,
    at: row.at,
    from: ConnectionStatusColumn.parse(row.from_status),
    to: ConnectionStatusColumn.parse(row.to_status),
    reason: row.reason,
  };
}
