import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ConflictError, InputError } from '../core/index.ts';
import type { Clock, Connection, ConnectionStore, LockedConnection, StoredSecret } from '../core/index.ts';
import { isUniqueViolation } from './constraint-errors.ts';
import { connectionFromRow, connectionPatchToRow, connectionToRow } from './rows.ts';
import type { ConnectionPatch } from './rows.ts';
import type { DatabaseSchema, SecretsTable } from './tables.ts';
import type { Selectable } from 'kysely';

const SECRET_PAGE = 100;
/**
 * How long a SQLite caller keeps trying to take a connection's lock. Each BEGIN IMMEDIATE waits up to the busy
 * timeout (5 s); a refresh holding the lock waits on GitLab for up to its own timeout, which may be longer.
 */
const SQLITE_LOCK_WAIT_MS = 60_000;

type Executor = Kysely<DatabaseSchema> | Transaction<DatabaseSchema>;

/**
 * Connections and their sealed secrets. Every lookup on behalf of a user filters by that user's id, so
 * another user's connection reads exactly like a missing one.
 */
export function createConnectionStore(db: Kysely<DatabaseSchema>, clock: Clock, kind: 'sqlite' | 'postgres'): ConnectionStore {
  function locked(executor: Executor, connection: Connection): LockedConnection {
    const { userId, id } = connection;
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
        return connectionFromRow(row);
      },
      async delete() {
        await deleteOwned(executor, userId, id);
      },
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
      const query =
        Object.keys(changes).length === 0
          ? db.selectFrom('connections').selectAll().where('id', '=', id).where('user_id', '=', userId)
          : db.updateTable('connections').set(changes).where('id', '=', id).where('user_id', '=', userId).returningAll();
      const row = await query.executeTakeFirst();
      return row === undefined ? null : connectionFromRow(row);
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
  // The sealed token rows go for good; nothing is merely flagged as deleted.
  await executor.deleteFrom('secrets').where('connection_id', '=', id).where('owner_id', '=', userId).execute();
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
