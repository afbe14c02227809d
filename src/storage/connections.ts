import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ConflictError, InputError } from '../core/index.ts';
import type { Clock, Connection, ConnectionStatus, ConnectionStore, LockedConnection, StoredSecret } from '../core/index.ts';
import { recordTransition } from './connection-events.ts';
import { isUniqueViolation } from './constraint-errors.ts';
import { connectionFromRow, connectionPatchToRow, connectionToRow } from './rows.ts';
import type { ConnectionPatch } from './rows.ts';
import { ConnectionStatusColumn } from './schema.ts';
import type { DatabaseSchema, SecretsTable } from './tables.ts';
import { deleteRotationIntent, listRotationIntents, rotationIntentOf, updateRotationAnswer, writeRotationIntent } from './token-rotations.ts';
import type { Selectable } from 'kysely';

const SECRET_PAGE = 100;
/**
 * How long a SQLite caller keeps trying to take a connection's lock. Each BEGIN IMMEDIATE waits up to the busy
 * timeout (5 s); a refresh holding the lock waits on GitLab for up to its own timeout, which may be longer.
 */
const SQLITE_LOCK_WAIT_MS = 60_000;
/** Compare-and-set rounds `updateConnection` tries when other writers keep changing the status under it. */
const STATUS_UPDATE_ATTEMPTS = 20;

type Executor = Kysely<DatabaseSchema> | Transaction<DatabaseSchema>;

/**
 * Connections and their sealed secrets. Every lookup on behalf of a user filters by that user's id, so
 * another user's connection reads exactly like a missing one.
 */
export function createConnectionStore(db: Kysely<DatabaseSchema>, clock: Clock, kind: 'sqlite' | 'postgres'): ConnectionStore {
  function locked(executor: Executor, connection: Connection): LockedConnection {
    const { userId, id } = connection;
    // The lock keeps every other writer out, so the status read when it was taken stays current until we change it.
    let status = connection.status;
    return {
      connection,
      getSecret: (purpose) => secretOf(executor, userId, id, purpose),
      async update(change) {
        const updatedAt = clock.now().toISOString();
        for (const secret of change.secrets ?? []) {
          await executor
            .updateTable('secrets')
            .set({ sealed: secret.sealed, updated_at: updatedAt })
            .where('id', '=', secret.id)
            .where('connection_id', '=', id)
            .where('owner_id', '=', userId)
            .execute();
        }
        const changes = connectionPatchToRow(change.patch ?? {});
        const row =
          Object.keys(changes).length === 0
            ? await executor.selectFrom('connections').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirstOrThrow()
            : await executor.updateTable('connections').set(changes).where('id', '=', id).where('user_id', '=', userId).returningAll().executeTakeFirstOrThrow();
        const updated = connectionFromRow(row);
        if (updated.status !== status) {
          await recordTransition(executor, transition(updated, status, updatedAt));
          status = updated.status;
        }
        return updated;
      },
      async delete() {
        await deleteOwned(executor, userId, id);
      },
      rotationIntent: () => rotationIntentOf(executor, userId, id),
      setRotationIntent: (intent) => writeRotationIntent(executor, userId, id, intent),
    };
  }

  return {
    async createConnection(connection: Connection, secrets: StoredSecret[]) {
      for (const secret of secrets) {
        if (secret.connectionId !== connection.id || secret.ownerId !== connection.userId) {
          throw new InputError('secret_mismatch', 'A secret must belong to the connection it is stored with.', {
            field: 'secrets',
          });
        }
      }
      const updatedAt = clock.now().toISOString();
      try {
        await db.transaction().execute(async (trx) => {
          await trx.insertInto('connections').values(connectionToRow(connection)).execute();
          if (secrets.length > 0) {
            await trx.insertInto('secrets').values(secrets.map((secret) => secretToRow(secret, updatedAt))).execute();
          }
        });
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        throw new ConflictError('connection_conflict', 'The connection or one of its secrets already exists.', {
          cause: error,
        });
      }
    },

    async getConnection(userId, id) {
      const row = await db
        .selectFrom('connections')
        .selectAll()
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row === undefined ? null : connectionFromRow(row);
    },

    async listConnections(userId) {
      const rows = await db
        .selectFrom('connections')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(connectionFromRow);
    },

    async updateConnection(userId, id, patch: ConnectionPatch) {
      const changes = connectionPatchToRow(patch);
      if (changes.status === undefined) {
        const query =
          Object.keys(changes).length === 0
            ? db.selectFrom('connections').selectAll().where('id', '=', id).where('user_id', '=', userId)
            : db.updateTable('connections').set(changes).where('id', '=', id).where('user_id', '=', userId).returningAll();
        const row = await query.executeTakeFirst();
        return row === undefined ? null : connectionFromRow(row);
      }
      // A status change is recorded as a transition from the status it replaced. The update only applies while the
      // status is still the one just read (compare-and-set), so of two writers racing from one status exactly one
      // records the transition from it, and the other reads again. The transaction starts with the write, which
      // SQLite needs for its lock to be waited for rather than refused.
      for (let attempt = 0; attempt < STATUS_UPDATE_ATTEMPTS; attempt++) {
        const current = await db.selectFrom('connections').select('status').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
        if (current === undefined) return null;
        const from = ConnectionStatusColumn.parse(current.status);
        const at = clock.now().toISOString();
        const updated = await db.transaction().execute(async (trx) => {
          const row = await trx
            .updateTable('connections')
            .set(changes)
            .where('id', '=', id)
            .where('user_id', '=', userId)
            .where('status', '=', from)
            .returningAll()
            .executeTakeFirst();
          if (row === undefined) return null;
          const connection = connectionFromRow(row);
          if (connection.status !== from) await recordTransition(trx, transition(connection, from, at));
          return connection;
        });
        if (updated !== null) return updated;
      }
      throw new ConflictError('connection_busy', `Connection ${id} kept changing status while it was being updated; try again.`);
    },

    async listAllConnections(filter = {}) {
      let query = db.selectFrom('connections').selectAll();
      if (filter.checkedBefore !== undefined) query = query.where('checked_at', '<', filter.checkedBefore);
      if (filter.expiringBy !== undefined) query = query.where('expires_at', 'is not', null).where('expires_at', '<=', filter.expiringBy);
      if (filter.statuses !== undefined) {
        if (filter.statuses.length === 0) return [];
        query = query.where('status', 'in', [...filter.statuses]);
      }
      const rows = await query.orderBy('checked_at').orderBy('id').execute();
      return rows.map(connectionFromRow);
    },

    async deleteConnection(userId, id) {
      return db.transaction().execute((trx) => deleteOwned(trx, userId, id));
    },

    getSecret: (userId, connectionId, purpose) => secretOf(db, userId, connectionId, purpose),

    async *allSecrets() {
      // Keyset pages rather than one open cursor: no connection is held between pages, and rows replaced
      // while iterating (by key rotation itself) do not move, since the order is by id.
      let after: string | null = null;
      for (;;) {
        let query = db.selectFrom('secrets').selectAll().orderBy('id').limit(SECRET_PAGE);
        if (after !== null) query = query.where('id', '>', after);
        const rows = await query.execute();
        for (const row of rows) yield secretFromRow(row);
        const last = rows.at(-1);
        if (last === undefined || rows.length < SECRET_PAGE) return;
        after = last.id;
      }
    },

    async replaceSecrets(updates) {
      if (updates.length === 0) return;
      const updatedAt = clock.now().toISOString();
      await db.transaction().execute(async (trx) => {
        for (const update of updates) {
          let query = trx
            .updateTable('secrets')
            .set({ sealed: update.sealed, updated_at: updatedAt })
            .where('id', '=', update.id);
          if (update.expected !== undefined) query = query.where('sealed', '=', update.expected);
          await query.execute();
        }
      });
    },

    async recordRotationAnswer(userId, connectionId, attemptId, answer) {
      // Not under the connection's lock: nobody holds it for long (no GitLab call happens under it for a rotation),
      // and this write must not wait behind anything that could. The intent's attempt id is the guard instead.
      if (kind === 'postgres') {
        // synchronous_commit is on by default: COMMIT returns once the WAL is flushed.
        return db.transaction().execute((trx) => updateRotationAnswer(trx, userId, connectionId, attemptId, answer));
      }
      return db.connection().execute(async (connection) => {
        // In WAL mode with synchronous=NORMAL a commit survives the process dying but not the machine losing power.
        // This commit holds the only copy of a token GitLab has already swapped in, so it is flushed (FULL), which
        // SQLite allows to change only outside a transaction.
        await sql.raw('pragma synchronous = FULL').execute(connection);
        try {
          await beginImmediate(connection);
          try {
            const recorded = await updateRotationAnswer(connection, userId, connectionId, attemptId, answer);
            await sql`commit`.execute(connection);
            return recorded;
          } catch (error) {
            await sql`rollback`.execute(connection);
            throw error;
          }
        } finally {
          await sql.raw('pragma synchronous = NORMAL').execute(connection);
        }
      });
    },

    listRotationIntents: () => listRotationIntents(db),

    async withConnectionLock(userId, id, use) {
      if (kind === 'postgres') {
        return db.transaction().execute(async (trx) => {
          // The row lock serializes every holder of this connection across processes and pool connections;
          // under READ COMMITTED each later statement of the holder sees what the previous holder committed.
          const row = await trx
            .selectFrom('connections')
            .selectAll()
            .where('id', '=', id)
            .where('user_id', '=', userId)
            .forUpdate()
            .executeTakeFirst();
          return row === undefined ? null : use(locked(trx, connectionFromRow(row)));
        });
      }
      // SQLite has no row locks: BEGIN IMMEDIATE takes the database's write lock, which every process honours,
      // before anything is read (see runs.ts's appendLog). The dialect has one connection per process, held
      // here until COMMIT, so holders within this process queue on it as well.
      return db.connection().execute(async (connection) => {
        await beginImmediate(connection);
        try {
          const row = await connection
            .selectFrom('connections')
            .selectAll()
            .where('id', '=', id)
            .where('user_id', '=', userId)
            .executeTakeFirst();
          const result = row === undefined ? null : await use(locked(connection, connectionFromRow(row)));
          await sql`commit`.execute(connection);
          return result;
        } catch (error) {
          await sql`rollback`.execute(connection);
          throw error;
        }
      });
    },
  };
}

async function secretOf(executor: Executor, userId: string, connectionId: string, purpose: string): Promise<StoredSecret | null> {
  const row = await executor
    .selectFrom('secrets')
    .selectAll()
    .where('owner_id', '=', userId)
    .where('connection_id', '=', connectionId)
    .where('purpose', '=', purpose)
    .executeTakeFirst();
  return row === undefined ? null : secretFromRow(row);
}

/** Deletes a connection and its secrets inside the caller's transaction; false when the user has no such connection. */
async function deleteOwned(executor: Executor, userId: string, id: string): Promise<boolean> {
  const owned = await executor
    .selectFrom('connections')
    .select('id')
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  if (owned === undefined) return false;
  // The sealed token rows go for good; nothing is merely flagged as deleted. Its status history and sent notices
  // go with it (the audit trail keeps what happened).
  await executor.deleteFrom('secrets').where('connection_id', '=', id).where('owner_id', '=', userId).execute();
  // An unfinished rotation's sealed answer is a token of this connection too.
  await deleteRotationIntent(executor, userId, id);
  await executor.deleteFrom('connection_events').where('connection_id', '=', id).where('owner_id', '=', userId).execute();
  await executor.deleteFrom('connection_notices').where('connection_id', '=', id).execute();
  const result = await executor.deleteFrom('connections').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * BEGIN IMMEDIATE without blocking the event loop: node:sqlite waits for a busy database synchronously, for
 * up to the busy timeout, and another process may hold this lock across a call to GitLab. So the busy timeout
 * is off while we try, and we retry on SQLITE_BUSY (errcode 5) with timers, up to SQLITE_LOCK_WAIT_MS. The
 * connection is this process's only one and ours until COMMIT, so the pragma affects nobody else.
 */
async function beginImmediate(executor: Executor): Promise<void> {
  const saved = await sql<{ timeout: number }>`pragma busy_timeout`.execute(executor);
  const timeout = Number(saved.rows[0]?.timeout ?? 5000);
  await sql.raw('pragma busy_timeout = 0').execute(executor);
  const deadline = Date.now() + SQLITE_LOCK_WAIT_MS;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await sql`begin immediate`.execute(executor);
        return;
      } catch (error) {
        const busy = (error as { errcode?: unknown }).errcode === 5;
        if (!busy || Date.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5 * 2 ** attempt, 100)));
      }
    }
  } finally {
    await sql.raw(`pragma busy_timeout = ${Math.trunc(timeout)}`).execute(executor);
  }
}

function transition(connection: Connection, from: ConnectionStatus, at: string) {
  return { connectionId: connection.id, ownerId: connection.userId, at, from, to: connection.status, reason: connection.statusReason };
}

function secretToRow(secret: StoredSecret, updatedAt: string): Selectable<SecretsTable> {
  return {
    id: secret.id,
    owner_id: secret.ownerId,
    connection_id: secret.connectionId,
    purpose: secret.purpose,
    sealed: secret.sealed,
    updated_at: updatedAt,
  };
}

function secretFromRow(row: Selectable<SecretsTable>): StoredSecret {
  return {
    id: row.id,
    ownerId: row.owner_id,
    connectionId: row.connection_id,
    purpose: row.purpose,
    sealed: row.sealed,
  };
}
