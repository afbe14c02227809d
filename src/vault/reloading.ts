import { readFileSync, statSync } from 'node:fs';
import type { Vault } from '../core/index.ts';
import { parseKeyringText } from './keyring-file.ts';
import type { Keyring } from './keyring.ts';
import { createVault } from './vault.ts';

/**
 * A vault over a keyring file that `forgelink admin rotate-key` may extend while this process runs.
 * Before each use it compares the file's modification time and size with what it last read (a stat,
 * cheap next to the GitLab call that follows every open) and re-reads the keyring when they changed,
 * so secrets re-sealed under a new version stay readable and new seals use it, without a restart.
 */
export function createFileBackedVault(options: { keyring: Keyring; path: string }): Vault {
  const { path } = options;
  let vault = createVault({ keyring: options.keyring });
  let seen = fingerprint(path);

  function current(): Vault {
    const now = fingerprint(path);
    if (now !== seen) {
      // A half-written file cannot be seen: rotate-key replaces it by rename. A parse error keeps the old keyring.
      try {
        vault = createVault({ keyring: parseKeyringText(readFileSync(path, 'utf8'), path) });
        seen = now;
      } catch {
        // Keep the keyring we have; the next use tries again.
      }
    }
    return vault;
  }

  return {
    seal: (plaintext, binding) => current().seal(plaintext, binding),
    open: (sealed, binding) => current().open(sealed, binding),
    keyIdOf: (sealed) => current().keyIdOf(sealed),
    currentKeyId: () => current().currentKeyId(),
  };
}

function fingerprint(path: string): string {
  try {
    const info = statSync(path);
    return `${info.mtimeMs}:${info.size}:${info.ino}`;
  } catch {
    return 'missing';
  }
}
