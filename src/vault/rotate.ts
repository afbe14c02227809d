import { VaultError } from '../core/index.ts';
import type { ConnectionStore, Vault } from '../core/index.ts';
import { bindingForSecret } from './binding.ts';
import { sealedKeyIdOrNull } from './vault.ts';

export type RotationReport = {
  /** Secrets seen. */
  total: number;
  /** Re-sealed under the current key. */
  resealed: number;
  /** Already under the current key; left alone. */
  alreadyCurrent: number;
  /** Ids of secrets that could not be opened (tampered or sealed with a key the keyring lacks). */
  failed: string[];
  /** Secrets still under an older key after the pass (failed ones, or ones refreshed meanwhile by a process with the old keyring). */
  remaining: number;
};

/**
 * The second step of `admin rotate-key`: re-seals every secret not yet under the vault's current key, with
 * the same binding. Old key versions must stay in the keyring until `remaining` is 0.
 */
export async function rotateSecrets(options: {
  vault: Vault;
  store: Pick<ConnectionStore, 'allSecrets' | 'replaceSecrets'>;
  batchSize?: number;
}): Promise<RotationReport> {
  const { vault, store } = options;
  const batchSize = options.batchSize ?? 100;
  const current = vault.currentKeyId();
  const report: RotationReport = { total: 0, resealed: 0, alreadyCurrent: 0, failed: [], remaining: 0 };
  let batch: { id: string; sealed: string; expected: string }[] = [];

  for await (const secret of store.allSecrets()) {
    report.total += 1;
    if (sealedKeyIdOrNull(secret.sealed) === current) {
      report.alreadyCurrent += 1;
      continue;
    }
    const binding = bindingForSecret(secret);
    let plaintext: string;
    try {
      plaintext = vault.open(secret.sealed, binding);
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      report.failed.push(secret.id);
      continue;
    }
    batch.push({ id: secret.id, sealed: vault.seal(plaintext, binding), expected: secret.sealed });
    if (batch.length >= batchSize) {
      await store.replaceSecrets(batch);
      report.resealed += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) {
    await store.replaceSecrets(batch);
    report.resealed += batch.length;
  }

  for await (const secret of store.allSecrets()) {
    if (sealedKeyIdOrNull(secret.sealed) !== current) report.remaining += 1;
  }
  return report;
}
