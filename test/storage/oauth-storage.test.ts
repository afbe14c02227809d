import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import type { OAuthState } from '../../src/core/index.ts';
import { openStorage } from '../../src/storage/index.ts';
import { databases } from '../support/databases.ts';
import { newConnection, newSecret, newUser } from '../support/records.ts';

function newState(userId: string, overrides: Partial<OAuthState> = {}): OAuthState {
  return {
    id: randomUUID(),
    stateHash: randomUUID().replaceAll('-', ''),
    sessionId: 'session',
    userId,
    baseUrl: 'https://gitlab.example.com',
    verifierSealed: 'sealed-verifier',
    createdAt: new Date().toISOString(),
    usedAt: null,
    ...overrides,
  };
}

for (const db of databases()) {
  describe(`OAuth storage on ${db.name}`, () => {
    test('a state is spent by exactly one of many racing callbacks, from two handles', async () => {
      const target = await db.createTarget();
      const [one, two] = [await openStorage(target.options), await openStorage(target.options)];
      try {
        const user = newUser();
        await one.users.createUser(user);
        const state = newState(user.id);
        await one.oauthStates.saveState(state);
        const now = new Date().toISOString();
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? one : two).oauthStates.consumeState(state.stateHash, now)),
        );
        assert.equal(results.filter((result) => result?.firstUse).length, 1);
        for (const result of results) assert.deepEqual({ ...result?.state, usedAt: null }, state);
        assert.equal(await one.oauthStates.consumeState('unknown', now), null);
        assert.equal(await one.oauthStates.deleteStatesBefore(new Date(Date.now() + 1000).toISOString()), 1);
        assert.equal(await one.oauthStates.consumeState(state.stateHash, now), null);
      } finally {
        await one.close();
        await two.close();
        await target.dispose();
      }
    });

    test('withConnectionLock: writes commit with the callback, roll back with its rejection; another user gets null', async () => {
      const storage = await db.open();
      try {
        const user = newUser();
        const other = newUser();
        await storage.users.createUser(user);
        await storage.users.createUser(other);
        const connection = newConnection(user.id, { kind: 'oauth', tokenExpiresAt: '2030-01-01T00:00:00.000Z' });
        const access = newSecret(connection, 'token', 'sealed-a');
        await storage.connections.createConnection(connection, [access]);

        const committed = await storage.connections.withConnectionLock(user.id, connection.id, async (locked) => {
          assert.deepEqual(locked.connection, connection);
          assert.equal((await locked.getSecret('token'))?.sealed, 'sealed-a');
          return locked.update({ secrets: [{ id: access.id, sealed: 'sealed-b' }], patch: { tokenExpiresAt: '2031-01-01T00:00:00.000Z' } });
        });
        assert.equal(committed?.tokenExpiresAt, '2031-01-01T00:00:00.000Z');
        assert.equal((await storage.connections.getSecret(user.id, connection.id, 'token'))?.sealed, 'sealed-b');

        await assert.rejects(
          storage.connections.withConnectionLock(user.id, connection.id, async (locked) => {
            await locked.update({ secrets: [{ id: access.id, sealed: 'sealed-c' }], patch: { status: 'revoked' } });
            throw new Error('GitLab went away');
          }),
          /GitLab went away/,
        );
        assert.equal((await storage.connections.getSecret(user.id, connection.id, 'token'))?.sealed, 'sealed-b');
        assert.equal((await storage.connections.getConnection(user.id, connection.id))?.status, 'active');
        if (db.name === 'sqlite') {
          // The lock turns the busy timeout off while it waits; it must be back afterwards for every other writer.
          const timeout = await sql<{ timeout: number }>`pragma busy_timeout`.execute(storage.db);
          assert.equal(timeout.rows[0]?.timeout, 5000);
        }

        let called = false;
        const foreign = await storage.connections.withConnectionLock(other.id, connection.id, async () => {
          called = true;
        });
        assert.equal(foreign, null);
        assert.equal(called, false);

        await storage.connections.withConnectionLock(user.id, connection.id, (locked) => locked.delete());
        assert.equal(await storage.connections.getConnection(user.id, connection.id), null);
        assert.equal(await storage.connections.getSecret(user.id, connection.id, 'token'), null);
      } finally {
        await storage.close();
      }
    });

    test('holders of one connection take turns', async () => {
      const storage = await db.open();
      try {
        const user = newUser();
        await storage.users.createUser(user);
        const connection = newConnection(user.id);
        await storage.connections.createConnection(connection, []);
        const events: string[] = [];
        const hold = (name: string) =>
          storage.connections.withConnectionLock(user.id, connection.id, async () => {
            events.push(`${name}:in`);
            await new Promise((resolve) => setTimeout(resolve, 50));
            events.push(`${name}:out`);
          });
        await Promise.all([hold('a'), hold('b'), hold('c')]);
        for (let i = 0; i < events.length; i += 2) {
          assert.equal(events[i]?.split(':')[0], events[i + 1]?.split(':')[0], `overlapping holders: ${events.join(' ')}`);
        }
      } finally {
        await storage.close();
      }
    });
  });
}
