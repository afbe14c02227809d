import { randomUUID } from 'node:crypto';
import type { Connection, NewUser, StoredSecret } from '../../src/core/index.ts';

/** A new user with unique id, name and key hash. */
export function newUser(overrides: Partial<NewUser> = {}): NewUser & { apiKeyHash: string } {
  const id = randomUUID();
  return {
    id,
    name: `user-${id.slice(0, 8)}`,
    isAdmin: false,
    apiKeyHash: `hash-${id}`,
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

/** A plausible connection of `userId`. */
export function newConnection(userId: string, overrides: Partial<Connection> = {}): Connection {
  return {
    id: randomUUID(),
    userId,
    provider: 'gitlab',
    kind: 'pat',
    baseUrl: 'https://gitlab.example.com/gitlab',
    host: 'gitlab.example.com',
    label: 'work',
    account: { id: 7, username: 'cospec-bot', name: 'Cospec Bot' },
    scopes: ['read_repository', 'write_repository'],
    expiresAt: '2027-01-31',
    tokenExpiresAt: null,
    rotation: null,
    credentials: null,
    policy: {},
    status: 'active',
    statusReason: null,
    caPem: null,
    instanceVersion: '17.5.0',
    checkedAt: '2026-01-02T03:04:05.000Z',
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

/** A secret row of `connection`; `sealed` is whatever the test puts there. */
export function newSecret(connection: Connection, purpose: string, sealed: string): StoredSecret {
  return { id: randomUUID(), ownerId: connection.userId, connectionId: connection.id, purpose, sealed };
}
