import type { SealedUserSecret, SecretBinding, StoredSecret } from '../core/index.ts';

/**
 * The binding a stored secret is sealed under: its owner, its connection and its purpose. Every sealer of
 * connection secrets uses this, so key rotation can re-open what they sealed. `(connectionId, purpose)`
 * is unique, so the binding names one row.
 */
export function bindingForSecret(secret: Pick<StoredSecret, 'ownerId' | 'connectionId' | 'purpose'>): SecretBinding {
  return { ownerId: secret.ownerId, recordId: secret.connectionId, purpose: secret.purpose };
}

/**
 * The binding of a user's named secret: its owner, its row and its name. A sealed value copied to another user's
 * row, another row of the same user, or a row renamed in the database no longer opens.
 */
export function bindingForUserSecret(secret: Pick<SealedUserSecret, 'userId' | 'id' | 'name'>): SecretBinding {
  return { ownerId: secret.userId, recordId: secret.id, purpose: `user_secret:${secret.name}` };
}
