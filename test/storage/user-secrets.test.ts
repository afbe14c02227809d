import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { VaultError, type SealedUserSecret } from '../../src/core/index.ts';
import type { Storage } from '../../src/storage/index.ts';
import { bindingForUserSecret, createVault } from '../../src/vault/index.ts';
import { databases } from '../support/databases.ts';
import { newUser } from '../support/records.ts';
import { newRun } from './run-records.ts';

const vault = createVault({ keyring: { versions: [{ id: 'k1', key: randomBytes(32) }] } });

for (const db of databases()) {
  describe(`user secrets on ${db.name}`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await db.open();
    });
    afterEach(async () => {
      await storage.close();
    });

    function put(userId: string, name: string, value: string, options: { hosts?: string[] | null; now?: string } = {}) {
      return storage.userSecrets.putSecret({
        userId,
        name,
        hosts: options.hosts === undefined ? null : options.hosts,
        seal: (id) => vault.seal(value, bindingForUserSecret({ userId, id, name })),
        newId: () => `sct_${randomUUID()}`,
        now: options.now ?? new Date().toISOString(),
      });
    }

    async function sealed(userId: string, name: string): Promise<SealedUserSecret> {
      const [secret] = await storage.userSecrets.getSecrets(userId, [name]);
      assert.ok(secret !== undefined, `no ${name}`);
      return secret;
    }

    test('create, then replace: same row and creation time, new value; hosts kept unless given', async () => {
      const user = await storage.users.createUser(newUser());
      const first = await put(user.id, 'ANTHROPIC_API_KEY', 'value-number-one', { hosts: ['api.anthropic.com:443'], now: '2026-01-01T00:00:00.000Z' });
      assert.equal(first.created, true);
      assert.deepEqual(
        { ...first.secret, id: 'x' },
        { id: 'x', userId: user.id, name: 'ANTHROPIC_API_KEY', hosts: ['api.anthropic.com:443'], createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', lastUsedAt: null },
      );

      const second = await put(user.id, 'ANTHROPIC_API_KEY', 'value-number-two', { now: '2026-02-01T00:00:00.000Z' });
      assert.equal(second.created, false);
      assert.equal(second.secret.id, first.secret.id);
      assert.equal(second.secret.createdAt, '2026-01-01T00:00:00.000Z');
      assert.equal(second.secret.updatedAt, '2026-02-01T00:00:00.000Z');
      assert.deepEqual(second.secret.hosts, ['api.anthropic.com:443']);
      const stored = await sealed(user.id, 'ANTHROPIC_API_KEY');
      assert.equal(vault.open(stored.sealed, bindingForUserSecret(stored)), 'value-number-two');

      const third = await put(user.id, 'ANTHROPIC_API_KEY', 'value-number-three', { hosts: [] });
      assert.deepEqual(third.secret.hosts, []);
      assert.equal((await storage.userSecrets.listSecrets(user.id)).length, 1);
    });

    test("each user has their own names; lookups, deletes and last use never reach another user's secret", async () => {
      const alice = await storage.users.createUser(newUser());
      const bob = await storage.users.createUser(newUser());
      const alices = (await put(alice.id, 'OPENAI_API_KEY', 'alice-value-123')).secret;
      assert.equal((await put(bob.id, 'OPENAI_API_KEY', 'bob-value-12345')).created, true);
      await put(alice.id, 'ANTHROPIC_API_KEY', 'alice-anthropic');

      assert.deepEqual((await storage.userSecrets.listSecrets(alice.id)).map((s) => s.name), ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY']);
      assert.deepEqual((await storage.userSecrets.listSecrets(bob.id)).map((s) => s.name), ['OPENAI_API_KEY']);
      assert.deepEqual((await storage.userSecrets.getSecrets(bob.id, ['ANTHROPIC_API_KEY', 'NOPE'])).map((s) => s.name), []);
      assert.deepEqual(await storage.userSecrets.getSecrets(bob.id, []), []);

      await storage.userSecrets.markUsed(bob.id, [alices.id], '2026-03-01T00:00:00.000Z');
      assert.equal((await sealed(alice.id, 'OPENAI_API_KEY')).lastUsedAt, null);
      await storage.userSecrets.markUsed(alice.id, [alices.id], '2026-03-01T00:00:00.000Z');
      assert.equal((await sealed(alice.id, 'OPENAI_API_KEY')).lastUsedAt, '2026-03-01T00:00:00.000Z');

      assert.equal(await storage.userSecrets.deleteSecret(bob.id, 'ANTHROPIC_API_KEY'), false);
      assert.equal(await storage.userSecrets.deleteSecret(alice.id, 'OPENAI_API_KEY'), true);
      assert.equal(await storage.userSecrets.deleteSecret(alice.id, 'OPENAI_API_KEY'), false);
      assert.deepEqual((await storage.userSecrets.listSecrets(bob.id)).map((s) => s.name), ['OPENAI_API_KEY']);
    });

    test('concurrent creates of one name end as one row', async () => {
      const user = await storage.users.createUser(newUser());
      const results = await Promise.all(Array.from({ length: 5 }, (_, index) => put(user.id, 'RACED_KEY', `racing-value-${index}`)));
      assert.equal(results.filter((result) => result.created).length, 1);
      assert.equal(new Set(results.map((result) => result.secret.id)).size, 1);
      assert.equal((await storage.userSecrets.listSecrets(user.id)).length, 1);
    });

    test("a sealed value moved to another user's row, another row or a renamed row does not open", async () => {
      const alice = await storage.users.createUser(newUser());
      const bob = await storage.users.createUser(newUser());
      await put(alice.id, 'ANTHROPIC_API_KEY', 'alice-secret-value');
      await put(alice.id, 'OPENAI_API_KEY', 'alice-other-value');
      await put(bob.id, 'ANTHROPIC_API_KEY', 'bob-secret-value');
      const source = await sealed(alice.id, 'ANTHROPIC_API_KEY');
      assert.equal(vault.open(source.sealed, bindingForUserSecret(source)), 'alice-secret-value');

      for (const target of [await sealed(bob.id, 'ANTHROPIC_API_KEY'), await sealed(alice.id, 'OPENAI_API_KEY')]) {
        await storage.userSecrets.replaceSealed([{ id: target.id, sealed: source.sealed }]);
        const moved = await sealed(target.userId, target.name);
        assert.equal(moved.sealed, source.sealed);
        assert.throws(() => vault.open(moved.sealed, bindingForUserSecret(moved)), (error) => error instanceof VaultError && error.code === 'vault_open_failed');
      }
      // The same row under another name (a row renamed in the database).
      assert.throws(() => vault.open(source.sealed, bindingForUserSecret({ ...source, name: 'OTHER_NAME' })), VaultError);
    });

    test('allSealed pages through every user; replaceSealed honours `expected`', async () => {
      const users = [await storage.users.createUser(newUser()), await storage.users.createUser(newUser())];
      for (let index = 0; index < 130; index++) await put(users[index % 2]!.id, `KEY_${index}`, `value-${index}-padding`);
      const seen: string[] = [];
      for await (const secret of storage.userSecrets.allSealed()) seen.push(secret.id);
      assert.equal(seen.length, 130);
      assert.equal(new Set(seen).size, 130);

      const [one] = await storage.userSecrets.getSecrets(users[0]!.id, ['KEY_0']);
      assert.ok(one !== undefined);
      await storage.userSecrets.replaceSealed([{ id: one.id, sealed: 'new', expected: 'not-the-current-one' }]);
      assert.equal((await sealed(users[0]!.id, 'KEY_0')).sealed, one.sealed);
      await storage.userSecrets.replaceSealed([{ id: one.id, sealed: 'new', expected: one.sealed }]);
      assert.equal((await sealed(users[0]!.id, 'KEY_0')).sealed, 'new');
    });

    test('a run records the names of its secrets', async () => {
      const user = await storage.users.createUser(newUser());
      const run = newRun(user.id, { secrets: ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY'] });
      await storage.runs.createRun(run);
      assert.deepEqual((await storage.runs.getRun(user.id, run.id))?.secrets, ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY']);
      const plain = newRun(user.id);
      await storage.runs.createRun(plain);
      assert.deepEqual((await storage.runs.getRun(user.id, plain.id))?.secrets, []);
    });
  });
}
