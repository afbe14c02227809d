import { InputError } from '../core/index.ts';

/** One version of the master key. Ids are stored with every ciphertext, so old ciphertexts find their key. */
export type KeyVersion = { id: string; key: Buffer; createdAt?: string };

/**
 * Key versions ordered oldest → newest; the newest seals, every version opens. `lost`: ids of keys that were
 * lost and given up (`forgelink serve --new-master-key`); secrets sealed under them no longer stop a start.
 */
export type Keyring = { versions: readonly KeyVersion[]; lost?: readonly string[] };

export const KEY_BYTES = 32;

// Ids appear between the dots of the sealed format, so they must never contain a dot.
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** Checks a keyring's shape; `source` names where it came from (a variable or file) in the error. */
export function validateKeyring(keyring: Keyring, source = 'keyring'): Keyring {
  if (keyring.versions.length === 0) {
    throw new InputError('keyring_empty', `${source} holds no key versions.`, { field: source });
  }
  const seen = new Set<string>();
  for (const version of keyring.versions) {
    if (!KEY_ID.test(version.id)) {
      throw new InputError(
        'keyring_bad_id',
        `${source}: key id "${version.id}" must be 1–32 letters, digits, "_" or "-".`,
        { field: source },
      );
    }
    if (seen.has(version.id)) {
      throw new InputError('keyring_duplicate_id', `${source}: key id "${version.id}" appears twice.`, {
        field: source,
      });
    }
    seen.add(version.id);
    if (version.key.length !== KEY_BYTES) {
      throw new InputError(
        'keyring_bad_key',
        `${source}: key "${version.id}" must be exactly ${KEY_BYTES} bytes.`,
        { field: source },
      );
    }
  }
  return keyring;
}

/** The version new seals use. */
export function currentVersion(keyring: Keyring): KeyVersion {
  const current = keyring.versions.at(-1);
  if (current === undefined) throw new InputError('keyring_empty', 'The keyring holds no key versions.');
  return current;
}

/**
 * Decodes a base64 (or base64url) key that must be exactly 32 bytes. Node's decoder skips characters it
 * does not know, so the text is checked strictly first: a typo must not silently yield another key.
 */
export function decodeKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const valid = /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed);
  const key = valid ? Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64') : null;
  if (key === null || key.length !== KEY_BYTES) {
    throw new InputError(
      'master_key_invalid',
      `${source} must be the base64 encoding of exactly ${KEY_BYTES} random bytes (for example the output of \`openssl rand -base64 32\`).`,
      { field: source },
    );
  }
  return key;
}

/** The id the next version gets: `k<n+1>` after the highest `k<n>` present. */
export function nextKeyId(keyring: { versions: readonly Pick<KeyVersion, 'id'>[] }): string {
  let highest = 0;
  for (const { id } of keyring.versions) {
    const match = /^k(\d+)$/.exec(id);
    if (match?.[1] !== undefined) highest = Math.max(highest, Number(match[1]));
  }
  return `k${highest + 1}`;
}
