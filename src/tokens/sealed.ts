import { SealedTokenError, VaultError, type StoredSecret, type Vault } from '../core/index.ts';
import { bindingForSecret } from '../vault/index.ts';

/** The purposes of a connection's sealed secrets (`connection_secrets.purpose`). */
export const TOKEN_PURPOSE = 'token';
export const REFRESH_TOKEN_PURPOSE = 'refresh_token';

/**
 * Opens one of a connection's sealed secrets. A secret that does not open (tampered, moved to another record, or
 * sealed with a key the keyring lacks) is not a server fault but the connection's state: it fails with a
 * `SealedTokenError` whose message says what to do, which check records as the connection's status reason.
 */
export function openSecret(vault: Vault, secret: StoredSecret): string {
  try {
    return vault.open(secret.sealed, bindingForSecret(secret));
  } catch (error) {
    if (!(error instanceof VaultError)) throw error;
    let keyId: string | null;
    try {
      keyId = vault.keyIdOf(secret.sealed);
    } catch {
      keyId = null;
    }
    throw new SealedTokenError(error.code, unopenedMessage(error.code, keyId), { keyId, cause: error });
  }
}

function unopenedMessage(code: string, keyId: string | null): string {
  const what = 'forgelink cannot open this connection\'s stored token';
  const restore = `restore the master key that has key id "${keyId}" (FORGELINK_MASTER_KEY_FILE, or master.key in the data directory, from a backup) and restart forgelink`;
  if (keyId === null) return `${what}: it is not in a format forgelink understands. Reconnect the account to store a new token.`;
  if (code === 'vault_unknown_key') {
    return `${what}: it was sealed with master key "${keyId}", which forgelink's keyring does not hold. To use it, ${restore}; or reconnect the account.`;
  }
  return `${what}: it was altered, moved to another record, or sealed with a different key of id "${keyId}". To use it, ${restore}; or reconnect the account.`;
}
