import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuditEntry } from '../../src/core/index.ts';
import { databases } from '../support/databases.ts';

function entry(overrides: Partial<AuditEntry>): AuditEntry {
  return {
    id: `aud_${Math.random().toString(16).slice(2)}`,
    at: new Date().toISOString(),
    ownerId: 'usr_a',
    actor: 'usr_a',
    action: 'token.decrypted',
    connectionId: 'con_1',
    runId: null,
    reason: 'check',
    details: {},
    ...overrides,
  };
}

for (const db of databases()) {
  describe(`audit trail on ${db.name}`, () => {
    test('records entries and lists them newest first, per owner, per connection, or all', async () => {
      const storage = await db.open();
      try {
        await storage.audit.record(entry({ id: 'a1', at: '2026-11-22T10:00:00.000Z', details: { scopes: ['api'] } }));
        await storage.audit.record(entry({ id: 'a2', at: '2026-11-22T11:00:00.000Z', action: 'run.started', runId: 'run_1', reason: null }));
        await storage.audit.record(entry({ id: 'b1', at: '2026-11-22T12:00:00.000Z', ownerId: 'usr_b', actor: 'usr_b', connectionId: 'con_2' }));

        const mine = await storage.audit.list({ ownerId: 'usr_a' });
        assert.deepEqual(mine.map((e) => e.id), ['a2', 'a1']);
        assert.deepEqual(mine[1]?.details, { scopes: ['api'] });
        assert.equal(mine[0]?.runId, 'run_1');
        assert.deepEqual((await storage.audit.list({ ownerId: null })).map((e) => e.id), ['b1', 'a2', 'a1']);
        assert.deepEqual((await storage.audit.list({ ownerId: null, connectionId: 'con_2' })).map((e) => e.id), ['b1']);
        assert.deepEqual((await storage.audit.list({ ownerId: 'usr_b', connectionId: 'con_1' })).map((e) => e.id), []);
        assert.equal((await storage.audit.list({ ownerId: null, limit: 1 })).length, 1);
      } finally {
        await storage.close();
      }
    });
  });
}
