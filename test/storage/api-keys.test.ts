import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { ConflictError, generateApiKey, hashApiKey, type NewApiKey } from '../../src/core/index.ts';
import { openStorage, SQLITE_FILENAME, type Storage, type StorageOptions } from '../../src/storage/index.ts';
import { migrations } from '../../src/storage/migrations.ts';
import { createSqliteDialect } from '../../src/storage/sqlite-dialect.ts';
import type { DatabaseSchema } from '../../src/storage/tables.ts';
import { databases } from '../support/databases.ts';
import { newUser } from '../support/records.ts';

function newKey(userId: string, overrides: Partial<NewApiKey> = {}): NewApiKey & { key: string } {
  const key = generateApiKey();
  return {
    id: `key_${crypto.randomUUID()}`,
    userId,
    name: 'laptop',
    prefix: key.slice(0, 8),
    keyHash: hashApiKey(key),
    createdAt: new Date().toISOString(),
    key,
    ...overrides,
  };
}

function dialectOf(options: StorageOptions) {
  return options.databaseUrl
    ? new PostgresDialect({ pool: new pg.Pool({ connectionString: options.databaseUrl, max: 1 }) })
    : createSqliteDialect({ path: join(options.dataDir, SQLITE_FILENAME) });
}

for (const db of databases()) {
  describe(`API keys on ${db.name}`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await db.open();
    });
    afterEach(async () => {
      await storage.close();
    });

    test('a new user has one key, "initial", found by its hash; the hash is nowhere else', async () => {
      const key = generateApiKey();
      const user = newUser({ apiKeyHash: hashApiKey(key), apiKeyPrefix: key.slice(0, 8) });
      await storage.users.createUser(user);
      const keys = await storage.apiKeys.listKeys(user.id);
      assert.deepEqual(
        keys.map((k) => ({ name: k.name, prefix: k.prefix, createdAt: k.createdAt, lastUsedAt: k.lastUsedAt, revokedAt: k.revokedAt })),
        [{ name: 'initial', prefix: key.slice(0, 8), createdAt: user.createdAt, lastUsedAt: null, revokedAt: null }],
      );
      assert.match(keys[0]!.id, /^key_[0-9a-f]{20}$/);
      const found = await storage.apiKeys.findActiveKey(hashApiKey(key));
      assert.equal(found?.user.id, user.id);
      assert.equal(found?.key.id, keys[0]!.id);
      const row = await storage.db.selectFrom('users').select('api_key_hash').where('id', '=', user.id).executeTakeFirstOrThrow();
      assert.notEqual(row.api_key_hash, hashApiKey(key));
    });

    test('keys are listed per user, oldest first, and never with their hash', async () => {
      const alice = newUser();
      const bob = newUser();
      await storage.users.createUser(alice);
      await storage.users.createUser(bob);
      const ci = newKey(alice.id, { name: 'ci', createdAt: '2030-01-02T00:00:00.000Z' });
      const laptop = newKey(alice.id, { name: 'laptop', createdAt: '2030-01-01T00:00:00.000Z' });
      await storage.apiKeys.createKey(ci);
      await storage.apiKeys.createKey(laptop);
      await storage.apiKeys.createKey(newKey(bob.id, { name: 'ci' }));
      const listed = await storage.apiKeys.listKeys(alice.id);
      assert.deepEqual(listed.map((k) => k.name), ['initial', 'laptop', 'ci']);
      assert.ok(!JSON.stringify(listed).includes(ci.keyHash));
      assert.deepEqual((await storage.apiKeys.listKeys(bob.id)).map((k) => k.name), ['initial', 'ci']);
    });

    test('a second unrevoked key of the same name is refused naming the field; after revoking, the name is free', async () => {
      const alice = newUser();
      await storage.users.createUser(alice);
      const first = newKey(alice.id, { name: 'ci' });
      await storage.apiKeys.createKey(first);
      await assert.rejects(storage.apiKeys.createKey(newKey(alice.id, { name: 'ci' })), (error) => {
        assert.ok(error instanceof ConflictError);
        assert.equal(error.code, 'key_name_taken');
        assert.equal(error.field, 'name');
        return true;
      });
      assert.equal(await storage.apiKeys.revokeKey(alice.id, first.id, new Date().toISOString()), true);
      await storage.apiKeys.createKey(newKey(alice.id, { name: 'ci' }));
      assert.deepEqual((await storage.apiKeys.listKeys(alice.id)).map((k) => k.name), ['initial', 'ci']);
    });

    test('a revoked key is found no more; another user cannot revoke it; revoking twice says false', async () => {
      const alice = newUser();
      const bob = newUser();
      await storage.users.createUser(alice);
      await storage.users.createUser(bob);
      const key = newKey(alice.id);
      await storage.apiKeys.createKey(key);
      assert.equal(await storage.apiKeys.revokeKey(bob.id, key.id, new Date().toISOString()), false);
      assert.equal((await storage.apiKeys.findActiveKey(key.keyHash))?.user.id, alice.id);
      assert.equal(await storage.apiKeys.revokeKey(alice.id, key.id, new Date().toISOString()), true);
      assert.equal(await storage.apiKeys.findActiveKey(key.keyHash), null);
      assert.equal(await storage.users.findUserByApiKeyHash(key.keyHash), null);
      assert.equal(await storage.apiKeys.revokeKey(alice.id, key.id, new Date().toISOString()), false);
      assert.deepEqual((await storage.apiKeys.listKeys(alice.id)).map((k) => k.name), ['initial']);
    });

    test('a use is recorded only when none is, or the recorded one is at or before staleAt', async () => {
      const alice = newUser();
      await storage.users.createUser(alice);
      const key = newKey(alice.id);
      await storage.apiKeys.createKey(key);
      assert.equal(await storage.apiKeys.recordUse(key.id, '2030-01-01T00:00:00.000Z', '2029-12-31T23:59:00.000Z'), true);
      assert.equal(await storage.apiKeys.recordUse(key.id, '2030-01-01T00:00:30.000Z', '2029-12-31T23:59:30.000Z'), false);
      assert.equal((await storage.apiKeys.findActiveKey(key.keyHash))?.key.lastUsedAt, '2030-01-01T00:00:00.000Z');
      assert.equal(await storage.apiKeys.recordUse(key.id, '2030-01-01T00:01:00.000Z', '2030-01-01T00:00:00.000Z'), true);
      assert.equal((await storage.apiKeys.findActiveKey(key.keyHash))?.key.lastUsedAt, '2030-01-01T00:01:00.000Z');
    });

    test('a key stored before key management keeps working after the upgrade, as "initial", and can be revoked', async () => {
      const target = await db.createTarget();
      try {
        const old = new Kysely<DatabaseSchema>({ dialect: dialectOf(target.options) });
        const key = generateApiKey();
        const user = newUser({ apiKeyHash: hashApiKey(key) });
        try {
          const { error } = await new Migrator({ db: old, provider: { getMigrations: async () => migrations } }).migrateTo('0007_token_rotation');
          if (error !== undefined) throw error;
          await old
            .insertInto('users')
            .values({ id: user.id, name: user.name, is_admin: false, api_key_hash: user.apiKeyHash, created_at: user.createdAt, password_hash: null })
            .execute();
        } finally {
          await old.destroy();
        }
        const upgraded = await openStorage(target.options);
        try {
          const found = await upgraded.apiKeys.findActiveKey(hashApiKey(key));
          assert.equal(found?.user.name, user.name);
          assert.deepEqual([found?.key.name, found?.key.prefix, found?.key.createdAt], ['initial', 'flk_', user.createdAt]);
          const row = await upgraded.db.selectFrom('users').select('api_key_hash').where('id', '=', user.id).executeTakeFirstOrThrow();
          assert.equal(row.api_key_hash, `api_keys:${user.id}`);
          assert.equal(await upgraded.apiKeys.revokeKey(user.id, found!.key.id, new Date().toISOString()), true);
          assert.equal(await upgraded.users.findUserByApiKeyHash(hashApiKey(key)), null);
        } finally {
          await upgraded.close();
        }
      } finally {
        await target.dispose();
      }
    });
  });
}
