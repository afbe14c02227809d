import { newId } from './api-keys.ts';
import type { AuditEntry } from './types.ts';

/** An audit entry stamped with a fresh id and the time; `details` never holds a secret. */
export function auditEntry(
  now: Date,
  fields: Omit<AuditEntry, 'id' | 'at' | 'connectionId' | 'runId' | 'reason' | 'details'> &
    Partial<Pick<AuditEntry, 'connectionId' | 'runId' | 'reason' | 'details'>>,
): AuditEntry {
  return {
    id: newId('aud'),
    at: now.toISOString(),
    connectionId: null,
    runId: null,
    reason: null,
    details: {},
    ...fields,
  };
}
