import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Connection, StoredSecret } from '../../src/core/index.ts';
import type { Storage } from '../../src/storage/index.ts';
import { bindingForSecret, bindingForUserSecret, createVault, rotateSecrets } from '../../src/vault/index.ts';
import type { KeyVersion } from '../../src/vault/index.ts';
import { databases } from '../support/databases.ts';
import { newConnection, newSecret, newUser } from '../support/records.ts';

const k1: KeyVersion = { id: 'k1', key: randomBytes(32) };
const k2: KeyVersion = { id: 'k2', key: randomBytes(32) };

for (const db of databases()) {
  describe(`key rotation on ${db.name}`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await db.open();
    });
    afterEach(async () => {
      await storage.close();
    });

    /** Stores `count` connections of a new user, each with an access and a refresh token sealed by `vault`. */
    async function seed(vault: ReturnType<typeof createVault>, count: number) {
      const user = await storage.users.createUser(newUser());
      const plaintexts = new Map<string, string>();
      const connections: Connection[] = [];
      for (let index = 0; index < count; index += 1) {
        const connection = newConnection(user.id);
        const secrets: StoredSecret[] = [];
        for (const purpose of ['access_token', 'refresh_token']) {
          const plaintext = `${purpose}-${index}-${randomBytes(4).toString('hex')}`;
          const secret = newSecret(connection, purpose, '');
          secret.sealed = vault.seal(plaintext, bindingForSecret(secret));
          plaintexts.set(secret.id, plaintext);
          secrets.push(secret);
        }
        await storage.connections.createConnection(connection, secrets);
        connections.push(connection);
      }
      return { user, connections, plaintexts };
    }

    async function everySecret(): Promise<StoredSecret[]> {
      const all: StoredSecret[] = [];
      for await (const secret of storage.connections.allSecrets()) all.push(secret);
      return all;
    }

    test('secrets sealed under k1 stay readable after adding k2, then rotateSecrets re-seals them under k2', async () => {
      const before = createVault({ keyring: { versions: [k1] } });
      const { plaintexts } = await seed(before, 3);
      const after = createVault({ keyring: { versions: [k1, k2] } });

      for (const secret of await everySecret()) {
        assert.equal(after.keyIdOf(secret.sealed), 'k1');
        assert.equal(after.open(secret.sealed, bindingForSecret(secret)), plaintexts.get(secret.id));
      }

      const report = await rotateSecrets({ vault: after, store: storage.connections, userSecrets: storage.userSecrets, batchSize: 4 });
      assert.deepEqual(report, { total: 6, resealed: 6, alreadyCurrent: 0, failed: [], remaining: 0 });

      const onlyK2 = createVault({ keyring: { versions: [k2] } });
      for (const secret of await everySecret()) {
        assert.equal(after.keyIdOf(secret.sealed), 'k2');
        // The binding is unchanged: opening with the same owner/record/purpose works, with another fails.
        assert.equal(onlyK2.open(secret.sealed, bindingForSecret(secret)), plaintexts.get(secret.id));
        assert.throws(() => onlyK2.open(secret.sealed, { ...bindingForSecret(secret), purpose: 'other' }));
      }

      const again = await rotateSecrets({ vault: after, store: storage.connections, userSecrets: storage.userSecrets });
      assert.deepEqual(again, { total: 6, resealed: 0, alreadyCurrent: 6, failed: [], remaining: 0 });
    });

    test("users' named secrets are re-sealed too, under the same binding, and a moved one is reported", async () => {
      const before = createVault({ keyring: { versions: [k1] } });
      await seed(before, 1);
      const user = await storage.users.createUser(newUser());
      const values = new Map<string, string>();
      for (const name of ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'THIRD_KEY']) {
        const value = `${name.toLowerCase()}-${randomBytes(8).toString('hex')}`;
        await storage.userSecrets.putSecret({
          userId: user.id,
          name,
          hosts: null,
          seal: (id) => before.seal(value, bindingForUserSecret({ userId: user.id, id, name })),
          newId: () => `sct_${randomBytes(6).toString('hex')}`,
          now: new Date().toISOString(),
        });
        values.set(name, value);
      }
      const sealedSecrets = async () => {
        const all = [];
        for await (const secret of storage.userSecrets.allSealed()) all.push(secret);
        return all;
      };
      // THIRD_KEY gets ANTHROPIC_API_KEY's ciphertext: it must not open under THIRD_KEY's row and name.
      const [first, , third] = (await sealedSecrets()).sort((a, b) => a.name.localeCompare(b.name));
      assert.ok(first !== undefined && third !== undefined && third.name === 'THIRD_KEY');
      await storage.userSecrets.replaceSealed([{ id: third.id, sealed: first.sealed }]);

      const after = createVault({ keyring: { versions: [k1, k2] } });
      const report = await rotateSecrets({ vault: after, store: storage.connections, userSecrets: storage.userSecrets, batchSize: 2 });
      assert.deepEqual(report, { total: 5, resealed: 4, alreadyCurrent: 0, failed: [third.id], remaining: 1 });

      const onlyK2 = createVault({ keyring: { versions: [k2] } });
      for (const secret of await sealedSecrets()) {
        if (secret.id === third.id) continue;
        assert.equal(onlyK2.keyIdOf(secret.sealed), 'k2');
        assert.equal(onlyK2.open(secret.sealed, bindingForUserSecret(secret)), values.get(secret.name));
      }
    });

    test('reports secrets it cannot open and leaves them alone', async () => {
      const before = createVault({ keyring: { versions: [k1] } });
      await seed(before, 1);
      const [victim, other] = await everySecret();
      assert.ok(victim !== undefined && other !== undefined);
      // Another secret's ciphertext copied into this row: it must not open under this row's binding.
      await storage.connections.replaceSecrets([{ id: victim.id, sealed: other.sealed }]);

      const after = createVault({ keyring: { versions: [k1, k2] } });
      const report = await rotateSecrets({ vault: after, store: storage.connections, userSecrets: storage.userSecrets });
      assert.deepEqual(report, { total: 2, resealed: 1, alreadyCurrent: 0, failed: [victim.id], remaining: 1 });
      assert.equal((await everySecret()).find((secret) => secret.id === victim.id)?.sealed, other.sealed);
    });

    test('does not overwrite a secret that changed while the rotation ran', async () => {
      const before = createVault({ keyring: { versions: [k1] } });
      await seed(before, 1);
      const after = createVault({ keyring: { versions: [k1, k2] } });
      const [target] = await everySecret();
      assert.ok(target !== undefined);
      const refreshed = before.seal('refreshed-token', bindingForSecret(target));

      // A store whose iteration lets a "token refresh" land between reading a secret and replacing it.
      const racing = {
        async *allSecrets() {
          for await (const secret of storage.connections.allSecrets()) {
            yield secret;
            if (secret.id === target.id) await storage.connections.replaceSecrets([{ id: target.id, sealed: refreshed }]);
          }
        },
        replaceSecrets: storage.connections.replaceSecrets,
      };
      const report = await rotateSecrets({ vault: after, store: racing, userSecrets: storage.userSecrets });
      assert.equal(report.remaining, 1);
      const stored = (await everySecret()).find((secret) => secret.id === target.id);
      assert.equal(stored?.sealed, refreshed);
      assert.equal(after.open(refreshed, bindingForSecret(target)), 'refreshed-token');
    });
  });
}
