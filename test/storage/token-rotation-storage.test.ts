import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { RotationAnswer, RotationIntent } from '../../src/core/index.ts';
import { openStorage } from '../../src/storage/index.ts';
import { databases } from '../support/databases.ts';
import { newConnection, newSecret, newUser } from '../support/records.ts';

function newIntent(ownerId: string, connectionId: string, overrides: Partial<RotationIntent> = {}): RotationIntent {
  return {
    connectionId,
    ownerId,
    attemptId: randomUUID(),
    requestedExpiresAt: '2030-02-01',
    actor: 'system',
    reason: 'run',
    startedAt: new Date().toISOString(),
    answer: null,
    ...overrides,
  };
}

const ANSWER: RotationAnswer = {
  sealedToken: 'sealed-new-token',
  tokenId: 42,
  expiresAt: '2030-02-01',
  scopes: ['api'],
  receivedAt: '2030-01-01T00:00:00.000Z',
};

for (const db of databases()) {
  describe(`token rotation storage on ${db.name}`, () => {
    test('rotation settings: null until configured, read back as written, cleared with null', async () => {
      const storage = await db.open();
      try {
        const user = newUser();
        await storage.users.createUser(user);
        const connection = newConnection(user.id, { scopes: ['api'] });
        await storage.connections.createConnection(connection, []);
        assert.equal((await storage.connections.getConnection(user.id, connection.id))?.rotation, null);

        const rotation = { enabled: true, lifetimeDays: 30, thresholdDays: 7, lastRotatedAt: null };
        const updated = await storage.connections.updateConnection(user.id, connection.id, { rotation });
        assert.deepEqual(updated?.rotation, rotation);
        const rotated = { ...rotation, lastRotatedAt: '2030-01-01T00:00:00.000Z' };
        const afterLock = await storage.connections.withConnectionLock(user.id, connection.id, (locked) =>
          locked.update({ patch: { rotation: rotated, expiresAt: '2030-02-01' } }),
        );
        assert.deepEqual(afterLock?.rotation, rotated);
        assert.deepEqual((await storage.connections.getConnection(user.id, connection.id))?.rotation, rotated);
        assert.deepEqual((await storage.connections.updateConnection(user.id, connection.id, { rotation: { ...rotated, enabled: false } }))?.rotation, {
          ...rotated,
          enabled: false,
        });
        assert.equal((await storage.connections.updateConnection(user.id, connection.id, { rotation: null }))?.rotation, null);

        const created = newConnection(user.id, { rotation });
        await storage.connections.createConnection(created, []);
        assert.deepEqual((await storage.connections.getConnection(user.id, created.id))?.rotation, rotation);
      } finally {
        await storage.close();
      }
    });

    test('an intent is written under the lock, committed with it, seen by another handle, and removed', async () => {
      const target = await db.createTarget();
      const [one, two] = [await openStorage(target.options), await openStorage(target.options)];
      try {
        const user = newUser();
        await one.users.createUser(user);
        const connection = newConnection(user.id, { scopes: ['api'] });
        await one.connections.createConnection(connection, [newSecret(connection, 'token', 'sealed')]);
        const intent = newIntent(user.id, connection.id);

        await one.connections.withConnectionLock(user.id, connection.id, async (locked) => {
          assert.equal(await locked.rotationIntent(), null);
          await locked.setRotationIntent(intent);
          assert.deepEqual(await locked.rotationIntent(), intent);
        });
        assert.deepEqual(await two.connections.listRotationIntents(), [intent]);
        assert.deepEqual(await two.connections.withConnectionLock(user.id, connection.id, (locked) => locked.rotationIntent()), intent);

        // A second intent for the same connection is refused by the primary key; the transaction rolls back.
        await assert.rejects(
          one.connections.withConnectionLock(user.id, connection.id, (locked) => locked.setRotationIntent(newIntent(user.id, connection.id))),
        );
        await assert.rejects(
          one.connections.withConnectionLock(user.id, connection.id, (locked) => locked.setRotationIntent(newIntent(user.id, 'another'))),
          { code: 'intent_mismatch' },
        );
        assert.deepEqual(await one.connections.listRotationIntents(), [intent]);

        await two.connections.withConnectionLock(user.id, connection.id, (locked) => locked.setRotationIntent(null));
        assert.deepEqual(await one.connections.listRotationIntents(), []);
      } finally {
        await one.close();
        await two.close();
        await target.dispose();
      }
    });

    test('an intent written in a lock whose callback fails is rolled back', async () => {
      const storage = await db.open();
      try {
        const user = newUser();
        await storage.users.createUser(user);
        const connection = newConnection(user.id);
        await storage.connections.createConnection(connection, []);
        await assert.rejects(
          storage.connections.withConnectionLock(user.id, connection.id, async (locked) => {
            await locked.setRotationIntent(newIntent(user.id, connection.id));
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.deepEqual(await storage.connections.listRotationIntents(), []);
      } finally {
        await storage.close();
      }
    });

    test('recordRotationAnswer: only on the attempt that asked, durable for another handle; false once the intent is gone', async () => {
      const target = await db.createTarget();
      const [one, two] = [await openStorage(target.options), await openStorage(target.options)];
      try {
        const user = newUser();
        await one.users.createUser(user);
        const connection = newConnection(user.id, { scopes: ['api'] });
        await one.connections.createConnection(connection, []);
        const intent = newIntent(user.id, connection.id);
        await one.connections.withConnectionLock(user.id, connection.id, (locked) => locked.setRotationIntent(intent));

        assert.equal(await one.connections.recordRotationAnswer(user.id, connection.id, 'another-attempt', ANSWER), false);
        assert.equal(await one.connections.recordRotationAnswer('another-user', connection.id, intent.attemptId, ANSWER), false);
        assert.equal((await two.connections.listRotationIntents())[0]?.answer, null);

        assert.equal(await one.connections.recordRotationAnswer(user.id, connection.id, intent.attemptId, ANSWER), true);
        assert.deepEqual(await two.connections.listRotationIntents(), [{ ...intent, answer: ANSWER }]);
        const withoutScopes = { ...ANSWER, scopes: null, expiresAt: null };
        assert.equal(await two.connections.recordRotationAnswer(user.id, connection.id, intent.attemptId, withoutScopes), true);
        assert.deepEqual((await one.connections.listRotationIntents())[0]?.answer, withoutScopes);

        await one.connections.withConnectionLock(user.id, connection.id, (locked) => locked.setRotationIntent(null));
        assert.equal(await two.connections.recordRotationAnswer(user.id, connection.id, intent.attemptId, ANSWER), false);
      } finally {
        await one.close();
        await two.close();
        await target.dispose();
      }
    });

    test('recordRotationAnswer goes through while another handle holds the connection lock (PostgreSQL) or right after it (SQLite)', async () => {
      const target = await db.createTarget();
      const [one, two] = [await openStorage(target.options), await openStorage(target.options)];
      try {
        const user = newUser();
        await one.users.createUser(user);
        const connection = newConnection(user.id);
        await one.connections.createConnection(connection, []);
        const intent = newIntent(user.id, connection.id);
        await one.connections.withConnectionLock(user.id, connection.id, (locked) => locked.setRotationIntent(intent));

        let release = () => {};
        const held = new Promise<void>((resolve) => (release = resolve));
        let entered = () => {};
        const lockTaken = new Promise<void>((resolve) => (entered = resolve));
        const holder = one.connections.withConnectionLock(user.id, connection.id, async () => {
          entered();
          await held;
        });
        await lockTaken;
        const recording = two.connections.recordRotationAnswer(user.id, connection.id, intent.attemptId, ANSWER);
        if (db.name === 'postgres') {
          assert.equal(await recording, true, 'not blocked by the row lock (no foreign key to the connection)');
          release();
        } else {
          // SQLite has one writer at a time: the answer waits for the lock's transaction, then commits.
          setTimeout(release, 200);
          assert.equal(await recording, true);
        }
        await holder;
        assert.deepEqual((await one.connections.listRotationIntents())[0]?.answer, ANSWER);
      } finally {
        await one.close();
        await two.close();
        await target.dispose();
      }
    });

    test('disconnecting deletes an unfinished rotation with its sealed answer', async () => {
      const storage = await db.open();
      try {
        const user = newUser();
        await storage.users.createUser(user);
        const connection = newConnection(user.id);
        const kept = newConnection(user.id);
        await storage.connections.createConnection(connection, [newSecret(connection, 'token', 'sealed')]);
        await storage.connections.createConnection(kept, []);
        const intent = newIntent(user.id, connection.id, { answer: ANSWER });
        const other = newIntent(user.id, kept.id);
        await storage.connections.withConnectionLock(user.id, connection.id, (locked) => locked.setRotationIntent(intent));
        await storage.connections.withConnectionLock(user.id, kept.id, (locked) => locked.setRotationIntent(other));
        assert.equal(await storage.connections.deleteConnection(user.id, connection.id), true);
        assert.deepEqual(await storage.connections.listRotationIntents(), [other]);
      } finally {
        await storage.close();
      }
    });
  });
}
