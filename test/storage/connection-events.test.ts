import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { openStorage, type Storage } from '../../src/storage/index.ts';
import { databases } from '../support/databases.ts';
import { newConnection, newSecret, newUser } from '../support/records.ts';

for (const db of databases()) {
  describe(`connection status transitions on ${db.name}`, () => {
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

    test('every status change is recorded with its reason; other updates and same-status updates are not', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, []);
      await storage.connections.updateConnection(alice, connection.id, { checkedAt: '2026-03-01T00:00:00.000Z' });
      await storage.connections.updateConnection(alice, connection.id, { status: 'active', statusReason: null });
      await storage.connections.updateConnection(alice, connection.id, { status: 'revoked', statusReason: 'GitLab says this token was revoked.' });
      await storage.connections.updateConnection(alice, connection.id, { status: 'revoked', statusReason: 'still revoked' });
      await storage.connections.updateConnection(alice, connection.id, { status: 'active', statusReason: null });

      const events = await storage.connectionEvents.list(alice, connection.id);
      assert.deepEqual(
        events.map(({ from, to, reason }) => ({ from, to, reason })),
        [
          { from: 'revoked', to: 'active', reason: null },
          { from: 'active', to: 'revoked', reason: 'GitLab says this token was revoked.' },
        ],
      );
      assert.ok(events.every((event) => event.ownerId === alice && event.connectionId === connection.id && !Number.isNaN(Date.parse(event.at))));
      assert.deepEqual(await storage.connectionEvents.list(bob, connection.id), [], 'another user sees none');
      assert.equal((await storage.connectionEvents.list(alice, connection.id, { limit: 1 })).length, 1);
    });

    test('a change made under the connection lock is recorded in the lock’s transaction; a rolled back one is not', async () => {
      const connection = newConnection(alice, { kind: 'oauth' });
      await storage.connections.createConnection(connection, []);
      await assert.rejects(
        storage.connections.withConnectionLock(alice, connection.id, async (locked) => {
          await locked.update({ patch: { status: 'invalid', statusReason: 'rolled back' } });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await storage.connectionEvents.list(alice, connection.id), []);
      await storage.connections.withConnectionLock(alice, connection.id, async (locked) => {
        await locked.update({ patch: { status: 'revoked', statusReason: 'refresh refused' } });
        await locked.update({ patch: { status: 'revoked' } });
      });
      const events = await storage.connectionEvents.list(alice, connection.id);
      assert.deepEqual(events.map(({ from, to, reason }) => ({ from, to, reason })), [{ from: 'active', to: 'revoked', reason: 'refresh refused' }]);
    });

    test('racing status writers from one status record exactly one transition from it', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, []);
      await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          storage.connections.updateConnection(alice, connection.id, { status: 'unreachable', statusReason: `writer ${index}` }),
        ),
      );
      const events = await storage.connectionEvents.list(alice, connection.id);
      assert.equal(events.length, 1);
      assert.equal(events[0]?.from, 'active');
      assert.equal(events[0]?.to, 'unreachable');
    });

    test('notifications are claimed once; older and claimed transitions are not pending', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, []);
      await storage.connections.updateConnection(alice, connection.id, { status: 'expired', statusReason: 'expired' });
      const [pending] = await storage.connectionEvents.unnotified('2000-01-01T00:00:00.000Z');
      assert.ok(pending);
      assert.deepEqual(await storage.connectionEvents.unnotified('2999-01-01T00:00:00.000Z'), []);
      const claims = await Promise.all([1, 2, 3].map(() => storage.connectionEvents.claimNotification(pending.id, new Date().toISOString())));
      assert.deepEqual(claims.sort(), [false, false, true]);
      assert.deepEqual(await storage.connectionEvents.unnotified('2000-01-01T00:00:00.000Z'), []);
    });

    test('a notice is claimed once per connection and key', async () => {
      const at = new Date().toISOString();
      assert.equal(await storage.connectionEvents.claimNotice('con_1', 'expiring:7:2027-01-31', at), true);
      assert.equal(await storage.connectionEvents.claimNotice('con_1', 'expiring:7:2027-01-31', at), false);
      assert.equal(await storage.connectionEvents.claimNotice('con_1', 'expiring:1:2027-01-31', at), true);
      assert.equal(await storage.connectionEvents.claimNotice('con_2', 'expiring:7:2027-01-31', at), true);
    });

    test('deleting a connection deletes its transitions and notices', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, [newSecret(connection, 'token', 'sealed')]);
      await storage.connections.updateConnection(alice, connection.id, { status: 'revoked', statusReason: 'revoked' });
      await storage.connectionEvents.claimNotice(connection.id, 'expiring:7:2027-01-31', new Date().toISOString());
      assert.equal(await storage.connections.deleteConnection(alice, connection.id), true);
      assert.deepEqual(await storage.db.selectFrom('connection_events').select('id').execute(), []);
      assert.equal(await storage.connectionEvents.claimNotice(connection.id, 'expiring:7:2027-01-31', new Date().toISOString()), true);
    });

    test('listAllConnections spans users and filters by last check and expiry', async () => {
      const old = newConnection(alice, { checkedAt: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-05' });
      const fresh = newConnection(bob, { checkedAt: '2026-01-03T00:00:00.000Z', expiresAt: null });
      const later = newConnection(bob, { checkedAt: '2026-01-02T00:00:00.000Z', expiresAt: '2026-02-01' });
      for (const connection of [old, fresh, later]) await storage.connections.createConnection(connection, []);
      const ids = (list: { id: string }[]) => list.map((connection) => connection.id);
      assert.deepEqual(ids(await storage.connections.listAllConnections()), [old.id, later.id, fresh.id]);
      assert.deepEqual(ids(await storage.connections.listAllConnections({ checkedBefore: '2026-01-02T12:00:00.000Z' })), [old.id, later.id]);
      assert.deepEqual(ids(await storage.connections.listAllConnections({ expiringBy: '2026-01-05' })), [old.id]);
      await storage.connections.updateConnection(bob, later.id, { status: 'revoked', statusReason: 'revoked' });
      assert.deepEqual(ids(await storage.connections.listAllConnections({ statuses: ['active', 'unreachable'] })), [old.id, fresh.id]);
      assert.deepEqual(ids(await storage.connections.listAllConnections({ statuses: [] })), []);
    });
  });

  describe(`leases on ${db.name}`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await db.open();
    });
    afterEach(async () => {
      await storage.close();
    });

    const times = (now: string, expiresAt: string) => ({ now, expiresAt });

    test('one holder at a time; renewals; an expired lease passes on; release frees it', async () => {
      assert.equal(await storage.leases.acquire('monitor', 'a', times('2026-01-01T00:00:00.000Z', '2026-01-01T00:03:00.000Z')), true);
      assert.equal(await storage.leases.acquire('monitor', 'b', times('2026-01-01T00:01:00.000Z', '2026-01-01T00:04:00.000Z')), false);
      assert.equal(await storage.leases.acquire('monitor', 'a', times('2026-01-01T00:02:00.000Z', '2026-01-01T00:05:00.000Z')), true, 'renewal');
      assert.equal(await storage.leases.acquire('monitor', 'b', times('2026-01-01T00:04:00.000Z', '2026-01-01T00:07:00.000Z')), false, 'renewed, not expired');
      assert.equal(await storage.leases.acquire('other', 'b', times('2026-01-01T00:04:00.000Z', '2026-01-01T00:07:00.000Z')), true, 'names are independent');
      assert.equal(await storage.leases.acquire('monitor', 'b', times('2026-01-01T00:05:00.000Z', '2026-01-01T00:08:00.000Z')), true, 'expired: b takes it');
      assert.equal(await storage.leases.acquire('monitor', 'a', times('2026-01-01T00:06:00.000Z', '2026-01-01T00:09:00.000Z')), false);
      await storage.leases.release('monitor', 'a');
      assert.equal(await storage.leases.acquire('monitor', 'a', times('2026-01-01T00:06:00.000Z', '2026-01-01T00:09:00.000Z')), false, 'a cannot release b’s lease');
      await storage.leases.release('monitor', 'b');
      assert.equal(await storage.leases.acquire('monitor', 'a', times('2026-01-01T00:06:00.000Z', '2026-01-01T00:09:00.000Z')), true);
    });

    test('of many racing for a free lease, from two storage handles, exactly one wins', async () => {
      const target = await db.createTarget();
      const first = await openStorage(target.options);
      const second = await openStorage(target.options);
      try {
        const now = new Date().toISOString();
        const expiresAt = new Date(Date.now() + 60_000).toISOString();
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, index) => (index % 2 === 0 ? first : second).leases.acquire('monitor', `holder-${index}`, { now, expiresAt })),
        );
        assert.equal(results.filter(Boolean).length, 1);
      } finally {
        await first.close();
        await second.close();
        await target.dispose();
      }
    });
  });
}
