export { createVault } from './vault.ts';
export { bindingForSecret, bindingForUserSecret } from './binding.ts';
export type { SealedStores } from './sealed-records.ts';
export { rotateSecrets } from './rotate.ts';
export type { RotationReport } from './rotate.ts';
export { currentVersion, decodeKey, KEY_BYTES } from './keyring.ts';
export type { Keyring, KeyVersion } from './keyring.ts';
export {
  addKeyVersion,
  loadKeyring,
  MASTER_KEY_FILE_VAR,
  MASTER_KEY_FILENAME,
  MASTER_KEY_VAR,
  parseKeyringText,
  serialiseKeyring,
} from './keyring-file.ts';
export type { AddedKeyVersion, KeyringSource, LoadedKeyring, MasterKeySettings } from './keyring-file.ts';
export { createFileBackedVault } from './reloading.ts';
export { loadKeyringForDatabase, NEW_MASTER_KEY_FLAG } from './keyring-check.ts';
export type { SealedReaders } from './keyring-check.ts';
