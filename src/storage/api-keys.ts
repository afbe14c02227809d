import type { Kysely, Selectable } from 'kysely';
import { ConflictError } from '../core/index.ts';
import type { ApiKey, ApiKeyStore, NewApiKey } from '../core/index.ts';
import { isUniqueViolation } from './constraint-errors.ts';
import { JOINED_USER_COLUMNS, joinedUser } from './rows.ts';
import type { ApiKeysTable, DatabaseSchema } from './tables.ts';

function apiKeyFromRow(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    prefix: row.prefix,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

export function apiKeyToRow(key: NewApiKey): Selectable<ApiKeysTable> {
  return {
    id: key.id,
    user_id: key.userId,
    name: key.name,
    prefix: key.prefix,
    key_hash: key.keyHash,
    created_at: key.createdAt,
    last_used_at: null,
    revoked_at: null,
  };
}

/** Inserts a key; a name an unrevoked key of the user already has is a ConflictError naming `name`. */
export async function insertApiKey(db: Kysely<DatabaseSchema>, key: NewApiKey): Promise<void> {
  try {
    await db.insertInto('api_keys').values(apiKeyToRow(key)).execute();
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const taken = await db
      .selectFrom('api_keys')
      .select('id')
      .where('user_id', '=', key.userId)
      .where('name', '=', key.name)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (taken !== undefined) {
      throw new ConflictError('key_name_taken', `You already have a key named "${key.name}": pick another name, or revoke that key first.`, {
        field: 'name',
        cause: error,
      });
    }
    // The id or the hash collided: a generated duplicate, a retryable accident.
    throw new ConflictError('key_conflict', 'The new key collides with an existing one; try again.', { cause: error });
  }
}

/** API keys by user; lookups by hash see unrevoked keys only. */
export function createApiKeyStore(db: Kysely<DatabaseSchema>): ApiKeyStore {
  return {
    createKey: (key) => insertApiKey(db, key),

    async listKeys(userId) {
      const rows = await db
        .selectFrom('api_keys')
        .selectAll()
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(apiKeyFromRow);
    },

    async revokeKey(userId, id, at) {
      const result = await db
        .updateTable('api_keys')
        .set({ revoked_at: at })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async findActiveKey(hash) {
      // One query per API request: the key and its user together.
      const row = await db
        .selectFrom('api_keys')
        .innerJoin('users', 'users.id', 'api_keys.user_id')
        .selectAll('api_keys')
        .select(JOINED_USER_COLUMNS)
        .where('api_keys.key_hash', '=', hash)
        .where('api_keys.revoked_at', 'is', null)
        .executeTakeFirst();
      return row === undefined ? null : { key: apiKeyFromRow(row), user: joinedUser(row) };
    },

    async recordUse(id, at, staleAt) {
      // Conditional, so processes sharing the database write a busy key's use once a minute between them.
      const result = await db
        .updateTable('api_keys')
        .set({ last_used_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', staleAt)]))
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
  };
}
