import type { Kysely, Selectable } from 'kysely';
import type { SealedUserSecret, UserSecret, UserSecretStore } from '../core/index.ts';
import { isUniqueViolation } from './constraint-errors.ts';
import { StringsJson } from './schema.ts';
import type { DatabaseSchema, UserSecretsTable } from './tables.ts';

const PAGE = 100;
/** A create that lost a race with another create of the same name becomes a replace; this bounds the retries. */
const PUT_ATTEMPTS = 3;

/**
 * Users' named secrets. Every lookup on behalf of a user filters by that user's id, so another user's secret reads
 * exactly like a missing one. Only the sealed value is stored.
 */
export function createUserSecretStore(db: Kysely<DatabaseSchema>): UserSecretStore {
  async function putOnce(input: Parameters<UserSecretStore['putSecret']>[0]): Promise<{ secret: UserSecret; created: boolean }> {
    return db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('user_secrets')
        .selectAll()
        .where('user_id', '=', input.userId)
        .where('name', '=', input.name)
        .executeTakeFirst();
      if (existing !== undefined) {
        const row = await trx
          .updateTable('user_secrets')
          .set({
            sealed: input.seal(existing.id),
            updated_at: input.now,
            ...(input.hosts === null ? {} : { hosts: JSON.stringify(input.hosts) }),
          })
          .where('id', '=', existing.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        return { secret: secretFromRow(row), created: false };
      }
      const id = input.newId();
      const row = await trx
        .insertInto('user_secrets')
        .values({
          id,
          user_id: input.userId,
          name: input.name,
          hosts: JSON.stringify(input.hosts ?? []),
          sealed: input.seal(id),
          created_at: input.now,
          updated_at: input.now,
          last_used_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return { secret: secretFromRow(row), created: true };
    });
  }

  return {
    async listSecrets(userId) {
      const rows = await db.selectFrom('user_secrets').selectAll().where('user_id', '=', userId).orderBy('name').execute();
      return rows.map(secretFromRow);
    },

    async getSecrets(userId, names) {
      if (names.length === 0) return [];
      const rows = await db
        .selectFrom('user_secrets')
        .selectAll()
        .where('user_id', '=', userId)
        .where('name', 'in', [...names])
        .orderBy('name')
        .execute();
      return rows.map(sealedFromRow);
    },

    async putSecret(input) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await putOnce(input);
        } catch (error) {
          if (!isUniqueViolation(error) || attempt >= PUT_ATTEMPTS) throw error;
        }
      }
    },

    async deleteSecret(userId, name) {
      const result = await db.deleteFrom('user_secrets').where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },

    async markUsed(userId, ids, at) {
      if (ids.length === 0) return;
      await db.updateTable('user_secrets').set({ last_used_at: at }).where('user_id', '=', userId).where('id', 'in', [...ids]).execute();
    },

    async *allSealed() {
      // Keyset pages, as `ConnectionStore.allSecrets`: rows replaced while iterating do not move.
      let after: string | null = null;
      for (;;) {
        let query = db.selectFrom('user_secrets').selectAll().orderBy('id').limit(PAGE);
        if (after !== null) query = query.where('id', '>', after);
        const rows = await query.execute();
        for (const row of rows) yield sealedFromRow(row);
        const last = rows.at(-1);
        if (last === undefined || rows.length < PAGE) return;
        after = last.id;
      }
    },

    async replaceSealed(updates) {
      if (updates.length === 0) return;
      await db.transaction().execute(async (trx) => {
        for (const update of updates) {
          // updated_at stays: re-sealing under a new key does not change the secret.
          let query = trx.updateTable('user_secrets').set({ sealed: update.sealed }).where('id', '=', update.id);
          if (update.expected !== undefined) query = query.where('sealed', '=', update.expected);
          await query.execute();
        }
      });
    },
  };
}

function secretFromRow(row: Selectable<UserSecretsTable>): UserSecret {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    hosts: StringsJson.parse(JSON.parse(row.hosts)),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastUsedAt: row.last_used_at,
  };
}

function sealedFromRow(row: Selectable<UserSecretsTable>): SealedUserSecret {
  return { ...secretFromRow(row), sealed: row.sealed };
}
