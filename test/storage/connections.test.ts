import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Connection } from '../../src/core/index.ts';
import type { Storage } from '../../src/storage/index.ts';
import { databases } from '../support/databases.ts';
import { newConnection, newSecret, newUser } from '../support/records.ts';

for (const db of databases()) {
  describe(`connections on ${db.name}`, () => {
    let storage: Storage;
    let alice: string;
    let bob: string;

    beforeEach(async () => {
      storage = await db.open();
      alice = (await storage.users.createUser(newUser())).id;
      bob = (await storage.users.createUser(newUser())).id;
    });
    afterEach(async () => {
      await storage.close();
    });

    async function secretRowCount(connectionId: string): Promise<number> {
      const rows = await storage.db.selectFrom('secrets').select('id').where('connection_id', '=', connectionId).execute();
      return rows.length;
    }

    test('stores and returns every field of a connection', async () => {
      const connection = newConnection(alice, {
        kind: 'oauth',
        caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
        statusReason: 'checked',
      });
      await storage.connections.createConnection(connection, []);
      assert.deepEqual(await storage.connections.getConnection(alice, connection.id), connection);
    });

    test('keeps the run defaults a connection gives its runs: credentials and the policy options it turns off', async () => {
      const connection = newConnection(alice, { credentials: 'direct', policy: { allowMerge: false, readOtherProjects: false } });
      await storage.connections.createConnection(connection, []);
      assert.deepEqual(await storage.connections.getConnection(alice, connection.id), connection);
      const updated = await storage.connections.updateConnection(alice, connection.id, { credentials: null, policy: { allowTags: false } });
      assert.deepEqual(updated, { ...connection, credentials: null, policy: { allowTags: false } });
      assert.deepEqual(await storage.connections.getConnection(alice, connection.id), updated);
    });

    test('round-trips null account, null expiry and empty scopes', async () => {
      const connection = newConnection(alice, { account: null, expiresAt: null, scopes: [], instanceVersion: null });
      await storage.connections.createConnection(connection, []);
      assert.deepEqual(await storage.connections.getConnection(alice, connection.id), connection);
    });

    test('lists only the user’s connections, oldest first', async () => {
      const older = newConnection(alice, { createdAt: '2026-01-01T00:00:00.000Z' });
      const newer = newConnection(alice, { createdAt: '2026-02-01T00:00:00.000Z' });
      await storage.connections.createConnection(newer, []);
      await storage.connections.createConnection(older, []);
      await storage.connections.createConnection(newConnection(bob), []);
      assert.deepEqual(
        (await storage.connections.listConnections(alice)).map((connection) => connection.id),
        [older.id, newer.id],
      );
    });

    test('updates the given fields and returns the result', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, []);
      const patch = {
        status: 'revoked',
        statusReason: 'token revoked',
        scopes: ['api'],
        account: null,
        checkedAt: '2026-03-01T00:00:00.000Z',
      } satisfies Partial<Connection>;
      const updated = await storage.connections.updateConnection(alice, connection.id, patch);
      const expected = { ...connection, ...patch };
      assert.deepEqual(updated, expected);
      assert.deepEqual(await storage.connections.getConnection(alice, connection.id), expected);
    });

    test('an empty patch returns the connection unchanged', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, []);
      assert.deepEqual(await storage.connections.updateConnection(alice, connection.id, {}), connection);
    });

    test('answers null or false for a connection that does not exist', async () => {
      assert.equal(await storage.connections.getConnection(alice, 'missing'), null);
      assert.equal(await storage.connections.updateConnection(alice, 'missing', { label: 'x' }), null);
      assert.equal(await storage.connections.updateConnection(alice, 'missing', {}), null);
      assert.equal(await storage.connections.deleteConnection(alice, 'missing'), false);
    });

    test('another user’s connection reads, updates and deletes exactly like a missing one', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, [newSecret(connection, 'token', 'sealed-a')]);

      assert.equal(await storage.connections.getConnection(bob, connection.id), null);
      assert.deepEqual(await storage.connections.listConnections(bob), []);
      assert.equal(await storage.connections.updateConnection(bob, connection.id, { label: 'stolen' }), null);
      assert.equal(await storage.connections.updateConnection(bob, connection.id, {}), null);
      assert.equal(await storage.connections.deleteConnection(bob, connection.id), false);
      assert.equal(await storage.connections.getSecret(bob, connection.id, 'token'), null);

      assert.deepEqual(await storage.connections.getConnection(alice, connection.id), connection);
      assert.equal((await storage.connections.getSecret(alice, connection.id, 'token'))?.sealed, 'sealed-a');
    });

    test('stores secrets with the connection and finds them by purpose', async () => {
      const connection = newConnection(alice, { kind: 'oauth' });
      const access = newSecret(connection, 'access_token', 'sealed-access');
      const refresh = newSecret(connection, 'refresh_token', 'sealed-refresh');
      await storage.connections.createConnection(connection, [access, refresh]);
      assert.deepEqual(await storage.connections.getSecret(alice, connection.id, 'access_token'), access);
      assert.deepEqual(await storage.connections.getSecret(alice, connection.id, 'refresh_token'), refresh);
      assert.equal(await storage.connections.getSecret(alice, connection.id, 'other'), null);
    });

    test('delete removes the connection and its secret rows', async () => {
      const connection = newConnection(alice);
      const kept = newConnection(alice);
      await storage.connections.createConnection(connection, [newSecret(connection, 'token', 'sealed-1')]);
      await storage.connections.createConnection(kept, [newSecret(kept, 'token', 'sealed-2')]);
      assert.equal(await secretRowCount(connection.id), 1);

      assert.equal(await storage.connections.deleteConnection(alice, connection.id), true);
      assert.equal(await storage.connections.getConnection(alice, connection.id), null);
      assert.equal(await secretRowCount(connection.id), 0);
      const sealedLeft = await storage.db.selectFrom('secrets').select('sealed').execute();
      assert.deepEqual(sealedLeft, [{ sealed: 'sealed-2' }]);
      assert.equal(await storage.connections.deleteConnection(alice, connection.id), false);
    });

    test('a failing secret insert leaves no connection behind', async () => {
      const connection = newConnection(alice);
      // Two secrets with one purpose break the (connection_id, purpose) unique constraint mid-transaction.
      const secrets = [newSecret(connection, 'token', 'sealed-1'), newSecret(connection, 'token', 'sealed-2')];
      await assert.rejects(storage.connections.createConnection(connection, secrets));
      assert.equal(await storage.connections.getConnection(alice, connection.id), null);
      assert.equal(await secretRowCount(connection.id), 0);
    });

    test('refuses a secret that belongs to another user or connection', async () => {
      const connection = newConnection(alice);
      const foreign = { ...newSecret(connection, 'token', 'sealed'), ownerId: bob };
      await assert.rejects(storage.connections.createConnection(connection, [foreign]), { code: 'secret_mismatch' });
      assert.equal(await storage.connections.getConnection(alice, connection.id), null);
    });

    test('the database itself refuses a secret whose owner differs from its connection’s', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, []);
      const row = { ...newSecret(connection, 'token', 'sealed'), ownerId: bob };
      await assert.rejects(
        storage.db
          .insertInto('secrets')
          .values({
            id: row.id,
            owner_id: row.ownerId,
            connection_id: row.connectionId,
            purpose: row.purpose,
            sealed: row.sealed,
            updated_at: new Date().toISOString(),
          })
          .execute(),
      );
    });

    test('allSecrets pages through every secret', async () => {
      const expected: string[] = [];
      for (let index = 0; index < 5; index += 1) {
        const connection = newConnection(index % 2 === 0 ? alice : bob);
        const secrets = Array.from({ length: 50 }, (_, n) => newSecret(connection, `p${n}`, `sealed-${index}-${n}`));
        await storage.connections.createConnection(connection, secrets);
        expected.push(...secrets.map((secret) => secret.id));
      }
      const seen: string[] = [];
      for await (const secret of storage.connections.allSecrets()) seen.push(secret.id);
      assert.deepEqual(seen.toSorted(), expected.toSorted());
    });

    test('replaceSecrets replaces in one go, and only where the expected value still holds', async () => {
      const connection = newConnection(alice);
      const a = newSecret(connection, 'a', 'old-a');
      const b = newSecret(connection, 'b', 'old-b');
      await storage.connections.createConnection(connection, [a, b]);
      await storage.connections.replaceSecrets([
        { id: a.id, sealed: 'new-a' },
        { id: b.id, sealed: 'new-b', expected: 'not-what-is-stored' },
      ]);
      assert.equal((await storage.connections.getSecret(alice, connection.id, 'a'))?.sealed, 'new-a');
      assert.equal((await storage.connections.getSecret(alice, connection.id, 'b'))?.sealed, 'old-b');
      await storage.connections.replaceSecrets([{ id: b.id, sealed: 'new-b', expected: 'old-b' }]);
      assert.equal((await storage.connections.getSecret(alice, connection.id, 'b'))?.sealed, 'new-b');
    });
  });
}
