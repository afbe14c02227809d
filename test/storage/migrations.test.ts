import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { openStorage } from '../../src/storage/index.ts';
import { databases } from '../support/databases.ts';
import { newUser } from '../support/records.ts';

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
          assert.deepEqual(applied.rows.map((row) => row.name), ['0001_users_connections_secrets']);
        } finally {
          await second.close();
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
