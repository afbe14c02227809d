import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Session } from '../../src/core/index.ts';
import type { Storage } from '../../src/storage/index.ts';
import { databases } from '../support/databases.ts';
import { newUser } from '../support/records.ts';

function newSession(userId: string, overrides: Partial<Session> = {}): Session {
  return {
    id: `hash-${Math.random().toString(16).slice(2)}`,
    userId,
    csrfToken: 'csrf',
    createdAt: '2026-05-01T10:00:00.000Z',
    lastSeenAt: '2026-05-01T10:00:00.000Z',
    expiresAt: '2026-05-01T22:00:00.000Z',
    ...overrides,
  };
}

for (const db of databases()) {
  describe(`passwords and sessions on ${db.name}`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await db.open();
    });
    afterEach(async () => {
      await storage.close();
    });

    test('a new user has no password hash until one is set', async () => {
      const input = newUser();
      const user = await storage.users.createUser(input);
      assert.deepEqual(await storage.users.findPasswordHash(input.name), { user, passwordHash: null });
      assert.equal(await storage.users.setPasswordHash(user.id, 'scrypt$1$2$3$salt$hash'), true);
      assert.deepEqual(await storage.users.findPasswordHash(input.name), { user, passwordHash: 'scrypt$1$2$3$salt$hash' });
      assert.equal(await storage.users.findPasswordHash('nobody'), null);
      assert.equal(await storage.users.setPasswordHash('usr_nobody', 'x'), false);
    });

    test('creates, reads, touches and deletes a session', async () => {
      const user = await storage.users.createUser(newUser());
      const session = newSession(user.id);
      await storage.sessions.createSession(session);
      assert.deepEqual(await storage.sessions.getSession(session.id), { session, user });
      const times = { lastSeenAt: '2026-05-01T11:00:00.000Z', expiresAt: '2026-05-01T23:00:00.000Z' };
      await storage.sessions.touchSession(session.id, times);
      assert.deepEqual(await storage.sessions.getSession(session.id), { session: { ...session, ...times }, user });
      await storage.sessions.deleteSession(session.id);
      assert.equal(await storage.sessions.getSession(session.id), null);
    });

    test("ends one user's sessions, and sweeps expired ones", async () => {
      const alice = await storage.users.createUser(newUser());
      const bob = await storage.users.createUser(newUser());
      const a1 = newSession(alice.id);
      const a2 = newSession(alice.id, { expiresAt: '2026-05-01T09:00:00.000Z' });
      const b1 = newSession(bob.id, { expiresAt: '2026-05-01T09:30:00.000Z' });
      const b2 = newSession(bob.id);
      for (const session of [a1, a2, b1, b2]) await storage.sessions.createSession(session);
      assert.equal(await storage.sessions.deleteUserSessions(alice.id), 2);
      assert.equal(await storage.sessions.getSession(a1.id), null);
      assert.equal(await storage.sessions.deleteExpiredSessions('2026-05-01T10:00:00.000Z'), 1);
      assert.equal(await storage.sessions.getSession(b1.id), null);
      assert.deepEqual((await storage.sessions.getSession(b2.id))?.session, b2);
    });

    test('a session must belong to an existing user', async () => {
      await assert.rejects(storage.sessions.createSession(newSession('usr_missing')));
    });
  });
}
