import { join } from 'node:path';
import { VaultError, type ConnectionStore, type UserSecretStore } from '../core/index.ts';
import { allSealedRecords } from './sealed-records.ts';
import {
  keyWouldBeGenerated,
  loadKeyring,
  MASTER_KEY_FILE_VAR,
  MASTER_KEY_FILENAME,
  MASTER_KEY_VAR,
  type KeyringSource,
  type LoadedKeyring,
  type MasterKeySettings,
} from './keyring-file.ts';
import { nextKeyId, type Keyring } from './keyring.ts';
import { createVault, sealedKeyIdOrNull } from './vault.ts';

/** The flag of `forgelink serve` that accepts starting with a key that cannot open the stored secrets. */
export const NEW_MASTER_KEY_FLAG = '--new-master-key';

/** Key ids the database's sealed secrets name, each with how many secrets use it. */
type KeyUse = Map<string, number>;

/** The stores holding sealed values: connections' tokens and users' named secrets (`Storage` fits). */
export type SealedReaders = { connections: Pick<ConnectionStore, 'allSecrets'>; userSecrets: Pick<UserSecretStore, 'allSealed'> };

/**
 * Loads the keyring (as `loadKeyring`) for a database that may already hold sealed secrets, and refuses
 * one that cannot open them: a lost `master.key` would otherwise be replaced by a new key silently and
 * every stored token would fail to open from then on. A key id counts as held when at least one secret
 * sealed under it opens (a single tampered secret does not make a key wrong). With `newKeyAllowed`
 * (`forgelink serve --new-master-key`) it starts anyway and says which secrets are lost; a key it generates
 * then records the lost ids (`lost` in the keyring file), so later starts do not ask again.
 */
export async function loadKeyringForDatabase(
  settings: MasterKeySettings,
  secrets: SealedReaders,
  options: { newKeyAllowed: boolean; now?: Date },
): Promise<LoadedKeyring> {
  const inUse = await keyIdsInUse(secrets);
  const sealedWith = [...inUse.keys()].sort();
  const file = join(settings.dataDir, MASTER_KEY_FILENAME);
  const generating = sealedWith.length > 0 && (await keyWouldBeGenerated(settings));
  if (generating && !options.newKeyAllowed) {
    throw new VaultError(
      'vault_master_key_missing',
      `${file} is missing, but the database holds ${count(inUse, sealedWith)} sealed with master key ${sealedWith.join(', ')}: ` +
        `a new key would not open them, so forgelink does not start. ${restoreHint(file)}`,
    );
  }
  const loaded = await loadKeyring(settings, {
    ...(options.now === undefined ? {} : { now: options.now }),
    // A key generated next to lost secrets takes an id they do not use, so their errors name the key they need.
    ...(generating ? { newKeyId: nextKeyId({ versions: sealedWith.map((id) => ({ id })) }), lostKeyIds: sealedWith } : {}),
  });
  if (generating && loaded.created) {
    return {
      ...loaded,
      notices: [
        ...loaded.notices,
        `Started with ${NEW_MASTER_KEY_FLAG}: ${count(inUse, sealedWith)} sealed with the lost master key ${sealedWith.join(', ')} ` +
          `cannot be opened; ${file} records them as lost. Their connections show invalid until they are reconnected or removed, and secrets set with "forgelink secrets set" must be set again.`,
      ],
    };
  }
  const lost = new Set(loaded.keyring.lost ?? []);
  const unusable = await unopenableKeyIds(loaded.keyring, secrets, sealedWith.filter((id) => !lost.has(id)));
  if (unusable.length === 0) return loaded;
  const lacking = unusable.filter((id) => !loaded.keyring.versions.some((version) => version.id === id));
  const differing = unusable.filter((id) => !lacking.includes(id));
  const problem = [
    ...(lacking.length > 0 ? [`${describeSource(loaded.source)} has no key ${lacking.join(', ')}`] : []),
    ...(differing.length > 0 ? [`the key ${differing.join(', ')} in ${describeSource(loaded.source)} is not the one they were sealed with`] : []),
  ].join(', and ');
  if (!options.newKeyAllowed) {
    throw new VaultError(
      'vault_master_key_mismatch',
      `The database holds ${count(inUse, unusable)} sealed with master key ${unusable.join(', ')}, but ${problem}, ` +
        `so forgelink does not start. ${restoreHint(file)}`,
    );
  }
  return {
    ...loaded,
    notices: [
      ...loaded.notices,
      `Started with ${NEW_MASTER_KEY_FLAG}: ${count(inUse, unusable)} sealed with master key ${unusable.join(', ')} cannot be opened ` +
        `(${problem}). Their connections show invalid until they are reconnected or removed (secrets set with "forgelink secrets set" until set again); until then every start needs ${NEW_MASTER_KEY_FLAG}.`,
    ],
  };
}

function restoreHint(file: string): string {
  return (
    `Put the backed-up master.key back at ${file} (mode 0600), or give that key through ${MASTER_KEY_VAR} (the base64 key) ` +
    `or ${MASTER_KEY_FILE_VAR} (a keyring file holding it). To start anyway with a new key (the stored GitLab tokens and secrets are lost: their ` +
    `connections must be reconnected and the secrets set again), run \`forgelink serve ${NEW_MASTER_KEY_FLAG}\`.`
  );
}

function describeSource(source: KeyringSource): string {
  if (source.kind === 'env') return source.variable;
  if (source.kind === 'operator-file') return `${MASTER_KEY_FILE_VAR} (${source.path})`;
  return source.path;
}

function count(inUse: KeyUse, ids: readonly string[]): string {
  const total = ids.reduce((sum, id) => sum + (inUse.get(id) ?? 0), 0);
  return `${total} secret${total === 1 ? '' : 's'}`;
}

async function keyIdsInUse(secrets: SealedReaders): Promise<KeyUse> {
  const inUse: KeyUse = new Map();
  for await (const secret of allSealedRecords(secrets)) {
    const keyId = sealedKeyIdOrNull(secret.sealed);
    if (keyId !== null) inUse.set(keyId, (inUse.get(keyId) ?? 0) + 1);
  }
  return inUse;
}

/** The ids in `needed` under which not one secret opens with `keyring`. */
async function unopenableKeyIds(keyring: Keyring, secrets: SealedReaders, needed: readonly string[]): Promise<string[]> {
  const vault = createVault({ keyring });
  const held = new Set(keyring.versions.map((version) => version.id));
  const opens = new Set<string>();
  for await (const secret of allSealedRecords(secrets)) {
    const keyId = sealedKeyIdOrNull(secret.sealed);
    if (keyId === null || !held.has(keyId) || opens.has(keyId)) continue;
    try {
      vault.open(secret.sealed, secret.binding);
      opens.add(keyId);
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
    }
  }
  return needed.filter((id) => !opens.has(id));
}
