import type { SecretBinding, StoredSecret } from '../core/index.ts';

/**
 * The binding a stored secret is sealed under: its owner, its connection and its purpose. Every sealer of
 * connection secrets uses this, so key rotation can re-open what they sealed. `(connectionId, purpose)`
 * is unique, so the binding names one row.
 */
export function bindingForSecret(secret: Pick<StoredSecret, 'ownerId' | 'connectionId' | 'purpose'>): SecretBinding {
  return { ownerId: secret.ownerId, recordId: secret.connectionId, purpose: secret.purpose };
}
