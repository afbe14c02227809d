import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConflictError } from '../../src/core/index.ts';
import type { Storage } from '../../src/storage/index.ts';
import { databases } from '../support/databases.ts';
import { newUser } from '../support/records.ts';

for (const db of databases()) {
  describe(`users on ${db.name}`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await db.open();
    });
    afterEach(async () => {
      await storage.close();
    });

    test('creates a user and finds it by name and by key hash', async () => {
      const input = newUser({ isAdmin: true });
      const created = await storage.users.createUser(input);
      const expected = { id: input.id, name: input.name, isAdmin: true, createdAt: input.createdAt };
      assert.deepEqual(created, expected);
      assert.deepEqual(await storage.users.findUserByName(input.name), expected);
      assert.deepEqual(await storage.users.findUserByApiKeyHash(input.apiKeyHash), expected);
    });

    test('keeps isAdmin false as a boolean', async () => {
      const input = newUser({ isAdmin: false });
      await storage.users.createUser(input);
      assert.equal((await storage.users.findUserByName(input.name))?.isAdmin, false);
    });

    test('answers null for an unknown name or key hash', async () => {
      await storage.users.createUser(newUser());
      assert.equal(await storage.users.findUserByName('nobody'), null);
      assert.equal(await storage.users.findUserByApiKeyHash('no-such-hash'), null);
    });

    test('refuses a second user of the same name with a ConflictError naming the field', async () => {
      const first = newUser();
      await storage.users.createUser(first);
      await assert.rejects(storage.users.createUser(newUser({ name: first.name })), (error) => {
        assert.ok(error instanceof ConflictError);
        assert.equal(error.code, 'user_exists');
        assert.equal(error.field, 'name');
        return true;
      });
    });

    test('refuses a duplicate key hash', async () => {
      const first = newUser();
      await storage.users.createUser(first);
      await assert.rejects(storage.users.createUser(newUser({ apiKeyHash: first.apiKeyHash })), ConflictError);
    });

    test('lists users in creation order', async () => {
      const a = newUser({ createdAt: '2026-01-01T00:00:00.000Z' });
      const b = newUser({ createdAt: '2026-01-02T00:00:00.000Z' });
      await storage.users.createUser(b);
      await storage.users.createUser(a);
      assert.deepEqual(
        (await storage.users.listUsers()).map((user) => user.id),
        [a.id, b.id],
      );
    });
  });
}
