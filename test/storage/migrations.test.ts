import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { openStorage, SQLITE_FILENAME, type StorageOptions } from '../../src/storage/index.ts';
import { connectionToRow } from '../../src/storage/rows.ts';
import { migrations } from '../../src/storage/migrations.ts';
import type { DatabaseSchema } from '../../src/storage/tables.ts';
import { createSqliteDialect } from '../../src/storage/sqlite-dialect.ts';
import { databases } from '../support/databases.ts';
import { newConnection, newSecret, newUser } from '../support/records.ts';
import { newRun } from './run-records.ts';

/** The database behind `options`, migrated only up to and including `name`, as an older forgelink left it. */
async function migrateOnlyTo(options: StorageOptions, name: string): Promise<void> {
  const dialect = options.databaseUrl
    ? new PostgresDialect({ pool: new pg.Pool({ connectionString: options.databaseUrl, max: 1 }) })
    : createSqliteDialect({ path: join(options.dataDir, SQLITE_FILENAME) });
  const db = new Kysely<unknown>({ dialect });
  try {
    const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
    const { error } = await migrator.migrateTo(name);
    if (error !== undefined) throw error;
  } finally {
    await db.destroy();
  }
}

for (const db of databases()) {
  describe(`migrations on ${db.name}`, () => {
    test('reopening applies nothing twice and keeps the data', async () => {
      const target = await db.createTarget();
      try {
        const first = await openStorage(target.options);
        const user = newUser();
        await first.users.createUser(user);
        await first.close();

        const second = await openStorage(target.options);
        try {
          assert.equal((await second.users.findUserByName(user.name))?.id, user.id);
          const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(second.db);
          assert.deepEqual(applied.rows.map((row) => row.name), Object.keys(migrations).sort());
        } finally {
          await second.close();
        }
      } finally {
        await target.dispose();
      }
    });

    test('upgrading a database of the first version keeps its data and adds runs', async () => {
      const target = await db.createTarget();
      try {
        await migrateOnlyTo(target.options, '0001_users_connections_secrets');
        // Written through the stores' current code, which only touches tables the first version has.
        const old = new Kysely<DatabaseSchema>({
          dialect: target.options.databaseUrl
            ? new PostgresDialect({ pool: new pg.Pool({ connectionString: target.options.databaseUrl, max: 1 }) })
            : createSqliteDialect({ path: join(target.options.dataDir, SQLITE_FILENAME) }),
        });
        const user = newUser();
        const connection = newConnection(user.id);
        const secret = newSecret(connection, 'token', 'sealed-value');
        try {
          const before = await sql<{ name: string }>`select name from kysely_migration`.execute(old);
          assert.deepEqual(before.rows.map((row) => row.name), ['0001_users_connections_secrets']);
          // The user row as the first version wrote it: the key's hash on the row itself.
          await old.insertInto('users').values({ id: user.id, name: user.name, is_admin: user.isAdmin, api_key_hash: user.apiKeyHash, created_at: user.createdAt }).execute();
          // Rows as the first version wrote them: without the columns later migrations added.
          const {
            token_expires_at: _added,
            rotation_enabled: _rotationEnabled,
            rotation_lifetime_days: _lifetime,
            rotation_threshold_days: _threshold,
            rotated_at: _rotatedAt,
            credentials: _credentials,
            policy: _policy,
            ...row
          } = connectionToRow(connection);
          await old.insertInto('connections').values(row).execute();
          await old
            .insertInto('secrets')
            .values({ id: secret.id, owner_id: secret.ownerId, connection_id: secret.connectionId, purpose: secret.purpose, sealed: secret.sealed, updated_at: connection.createdAt })
            .execute();
        } finally {
          await old.destroy();
        }

        const upgraded = await openStorage(target.options);
        try {
          assert.deepEqual(await upgraded.connections.getConnection(user.id, connection.id), connection);
          assert.equal((await upgraded.users.findUserByName(user.name))?.id, user.id);
          // The key the first version handed out still authenticates, now as the user's key "initial".
          assert.equal((await upgraded.users.findUserByApiKeyHash(user.apiKeyHash))?.id, user.id);
          assert.deepEqual(
            (await upgraded.apiKeys.listKeys(user.id)).map((key) => [key.name, key.prefix, key.createdAt, key.lastUsedAt, key.revokedAt]),
            [['initial', 'flk_', user.createdAt, null, null]],
          );
          assert.deepEqual(await upgraded.connections.getSecret(user.id, connection.id, 'token'), secret);
          const run = newRun(user.id, { connectionId: connection.id });
          await upgraded.runs.createRun(run);
          await upgraded.runs.appendLog(run.id, [{ at: run.createdAt, stream: 'system', text: 'started' }]);
          assert.deepEqual(await upgraded.runs.getRun(user.id, run.id), run);
          assert.equal((await upgraded.runs.readLog(run.id)).length, 1);
          const after = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(upgraded.db);
          assert.deepEqual(after.rows.map((row) => row.name), Object.keys(migrations).sort());
        } finally {
          await upgraded.close();
        }
      } finally {
        await target.dispose();
      }
    });

    test('two processes opening one fresh database at once both succeed', async () => {
      const target = await db.createTarget();
      try {
        const opened = await Promise.all([openStorage(target.options), openStorage(target.options)]);
        for (const storage of opened) await storage.close();
      } finally {
        await target.dispose();
      }
    });
  });
}

describe('sqlite settings', () => {
  test('the embedded database runs in WAL mode with foreign keys enforced', async () => {
    const sqlite = databases().find((db) => db.name === 'sqlite');
    assert.ok(sqlite !== undefined);
    const storage = await sqlite.open();
    try {
      const journal = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(storage.db);
      assert.equal(journal.rows[0]?.journal_mode, 'wal');
      const foreignKeys = await sql<{ foreign_keys: number }>`PRAGMA foreign_keys`.execute(storage.db);
      assert.equal(foreignKeys.rows[0]?.foreign_keys, 1);
    } finally {
      await storage.close();
    }
  });
});
