import { VaultError } from '../core/index.ts';
import type { Vault } from '../core/index.ts';
import { allSealedRecords, replaceSealedRecords, type SealedKind, type SealedStores } from './sealed-records.ts';
import { sealedKeyIdOrNull } from './vault.ts';

export type RotationReport = {
  /** Secrets seen: connections' tokens and users' named secrets. */
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
 * the same binding: connections' tokens (`store`) and users' named secrets (`userSecrets`). Old key versions must
 * stay in the keyring until `remaining` is 0.
 */
export async function rotateSecrets(options: {
  vault: Vault;
  store: SealedStores['connections'];
  userSecrets: SealedStores['userSecrets'];
  batchSize?: number;
}): Promise<RotationReport> {
  const { vault } = options;
  const stores: SealedStores = { connections: options.store, userSecrets: options.userSecrets };
  const batchSize = options.batchSize ?? 100;
  const current = vault.currentKeyId();
  const report: RotationReport = { total: 0, resealed: 0, alreadyCurrent: 0, failed: [], remaining: 0 };
  let batch: { id: string; sealed: string; expected: string }[] = [];
  let batchKind: SealedKind = 'connection';

  async function write(): Promise<void> {
    if (batch.length === 0) return;
    await replaceSealedRecords(stores, batchKind, batch);
    report.resealed += batch.length;
    batch = [];
  }

  for await (const record of allSealedRecords(stores)) {
    report.total += 1;
    if (sealedKeyIdOrNull(record.sealed) === current) {
      report.alreadyCurrent += 1;
      continue;
    }
    let plaintext: string;
    try {
      plaintext = vault.open(record.sealed, record.binding);
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      report.failed.push(record.id);
      continue;
    }
    if (record.kind !== batchKind) await write();
    batchKind = record.kind;
    batch.push({ id: record.id, sealed: vault.seal(plaintext, record.binding), expected: record.sealed });
    if (batch.length >= batchSize) await write();
  }
  await write();

  for await (const record of allSealedRecords(stores)) {
    if (sealedKeyIdOrNull(record.sealed) !== current) report.remaining += 1;
  }
  return report;
}
