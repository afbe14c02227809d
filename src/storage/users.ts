import type { Kysely } from 'kysely';
import { API_KEY_PREFIX, ConflictError, newId } from '../core/index.ts';
import type { NewUser, User, UserStore } from '../core/index.ts';
import { apiKeyToRow, createApiKeyStore } from './api-keys.ts';
import { isUniqueViolation } from './constraint-errors.ts';
import { retiredKeyHash } from './migrations.ts';
import { userFromRow } from './rows.ts';
import type { DatabaseSchema } from './tables.ts';

/** The name of the key a user is created with. */
export const INITIAL_KEY_NAME = 'initial';

/** Users with their password hashes, and their first API key's (keys and passwords themselves are never stored). */
export function createUserStore(db: Kysely<DatabaseSchema>): UserStore {
  const keys = createApiKeyStore(db);
  return {
    async createUser(user: NewUser): Promise<User> {
      try {
        await db.transaction().execute(async (trx) => {
          await trx
            .insertInto('users')
            .values({
              id: user.id,
              name: user.name,
              is_admin: user.isAdmin,
              api_key_hash: retiredKeyHash(user.id),
              created_at: user.createdAt,
            })
            .execute();
          if (user.apiKeyHash === undefined) return;
          await trx
            .insertInto('api_keys')
            .values(
              apiKeyToRow({
                id: newId('key'),
                userId: user.id,
                name: INITIAL_KEY_NAME,
                prefix: user.apiKeyPrefix ?? API_KEY_PREFIX,
                keyHash: user.apiKeyHash,
                createdAt: user.createdAt,
              }),
            )
            .execute();
        });
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        const taken = await db.selectFrom('users').select('id').where('name', '=', user.name).executeTakeFirst();
        if (taken !== undefined) {
          throw new ConflictError('user_exists', `A user named "${user.name}" already exists.`, {
            field: 'name',
            cause: error,
          });
        }
        // The id or the API key hash collided: the caller generated a duplicate, which is a retryable accident.
        throw new ConflictError('user_conflict', 'The new user collides with an existing one; try again.', {
          cause: error,
        });
      }
      return { id: user.id, name: user.name, isAdmin: user.isAdmin, createdAt: user.createdAt };
    },

    async findUserByName(name) {
      const row = await db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
      return row === undefined ? null : userFromRow(row);
    },

    async findUserByApiKeyHash(hash) {
      return (await keys.findActiveKey(hash))?.user ?? null;
    },

    async listUsers() {
      const rows = await db.selectFrom('users').selectAll().orderBy('created_at').orderBy('name').execute();
      return rows.map(userFromRow);
    },

    async findPasswordHash(name) {
      const row = await db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
      return row === undefined ? null : { user: userFromRow(row), passwordHash: row.password_hash };
    },

    async setPasswordHash(userId, passwordHash) {
      const result = await db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', userId).executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
  };
}
