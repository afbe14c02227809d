import type { Kysely } from 'kysely';
import { ConflictError, InputError } from '../core/index.ts';
import type { Clock, Connection, ConnectionStore, StoredSecret } from '../core/index.ts';
import { isUniqueViolation } from './constraint-errors.ts';
import { connectionFromRow, connectionPatchToRow, connectionToRow } from './rows.ts';
import type { ConnectionPatch } from './rows.ts';
import type { DatabaseSchema, SecretsTable } from './tables.ts';
import type { Selectable } from 'kysely';

const SECRET_PAGE = 100;

/**
 * Connections and their sealed secrets. Every lookup on behalf of a user filters by that user's id, so
 * another user's connection reads exactly like a missing one.
 */
export function createConnectionStore(db: Kysely<DatabaseSchema>, clock: Clock): ConnectionStore {
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
      return db.transaction().execute(async (trx) => {
        const owned = await trx
          .selectFrom('connections')
          .select('id')
          .where('id', '=', id)
          .where('user_id', '=', userId)
          .executeTakeFirst();
        if (owned === undefined) return false;
        // The sealed token rows go for good; nothing is merely flagged as deleted.
        await trx.deleteFrom('secrets').where('connection_id', '=', id).where('owner_id', '=', userId).execute();
        const result = await trx
          .deleteFrom('connections')
          .where('id', '=', id)
          .where('user_id', '=', userId)
          .executeTakeFirst();
        return result.numDeletedRows > 0n;
      });
    },

    async getSecret(userId, connectionId, purpose) {
      const row = await db
        .selectFrom('secrets')
        .selectAll()
        .where('owner_id', '=', userId)
        .where('connection_id', '=', connectionId)
        .where('purpose', '=', purpose)
        .executeTakeFirst();
      return row === undefined ? null : secretFromRow(row);
    },

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
  };
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
