import type { ConnectionStore, SecretBinding, UserSecretStore } from '../core/index.ts';
import { bindingForSecret, bindingForUserSecret } from './binding.ts';

/** Where the database keeps sealed values that key rotation and the master-key check at start must cover. */
export type SealedStores = {
  connections: Pick<ConnectionStore, 'allSecrets' | 'replaceSecrets'>;
  userSecrets: Pick<UserSecretStore, 'allSealed' | 'replaceSealed'>;
};

/** One sealed value with the binding it opens under, whichever table holds it. */
export type SealedRecord = { id: string; sealed: string; binding: SecretBinding; kind: SealedKind };
export type SealedKind = 'connection' | 'user_secret';

/** Every sealed value of every kind: connections' tokens, then users' secrets. */
export async function* allSealedRecords(stores: {
  connections: Pick<ConnectionStore, 'allSecrets'>;
  userSecrets: Pick<UserSecretStore, 'allSealed'>;
}): AsyncIterable<SealedRecord> {
  for await (const secret of stores.connections.allSecrets()) {
    yield { id: secret.id, sealed: secret.sealed, binding: bindingForSecret(secret), kind: 'connection' };
  }
  for await (const secret of stores.userSecrets.allSealed()) {
    yield { id: secret.id, sealed: secret.sealed, binding: bindingForUserSecret(secret), kind: 'user_secret' };
  }
}

/** Replaces sealed values of one kind (compare-and-set on `expected`, as the stores do). */
export function replaceSealedRecords(
  stores: SealedStores,
  kind: SealedKind,
  updates: { id: string; sealed: string; expected?: string }[],
): Promise<void> {
  return kind === 'connection' ? stores.connections.replaceSecrets(updates) : stores.userSecrets.replaceSealed(updates);
}
