import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { VaultError } from '../core/index.ts';
import type { SecretBinding, Vault } from '../core/index.ts';
import { currentVersion, validateKeyring } from './keyring.ts';
import type { Keyring } from './keyring.ts';

/** Format tag of sealed values; part of the associated data, so a value cannot be reinterpreted under a later format. */
const FORMAT = 'fl1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

type Parsed = { keyId: string; nonce: Buffer; ciphertext: Buffer; tag: Buffer };

/**
 * AES-256-GCM sealing with a versioned keyring. Sealed values read `fl1.<keyId>.<nonce>.<ciphertext+tag>`
 * (base64url); the associated data binds them to owner, record and purpose.
 */
export function createVault(options: { keyring: Keyring }): Vault {
  const keyring = validateKeyring(options.keyring);
  const keys = new Map(keyring.versions.map((version) => [version.id, version.key]));
  const current = currentVersion(keyring);

  function seal(plaintext: string, binding: SecretBinding): string {
    checkBinding(binding);
    // A fresh random 96-bit nonce per seal: GCM loses confidentiality and integrity if a nonce repeats under one key.
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', current.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(current.id, binding));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return [FORMAT, current.id, nonce.toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  function open(sealed: string, binding: SecretBinding): string {
    checkBinding(binding);
    const parsed = parse(sealed);
    const key = keys.get(parsed.keyId);
    if (key === undefined) {
      throw new VaultError(
        'vault_unknown_key',
        `The secret was sealed with key "${parsed.keyId}", which the keyring does not hold.`,
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', key, parsed.nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(parsed.keyId, binding));
    decipher.setAuthTag(parsed.tag);
    try {
      return Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]).toString('utf8');
    } catch (cause) {
      // GCM cannot tell a changed byte from a wrong binding or a different key of the same id; all look alike.
      throw new VaultError(
        'vault_open_failed',
        'The secret could not be opened: it was altered, moved to another record, or sealed with a different key.',
        { cause },
      );
    }
  }

  return {
    seal,
    open,
    keyIdOf: (sealed) => parse(sealed).keyId,
    currentKeyId: () => current.id,
  };
}

/** The key id a value in the sealed format names (`fl1.<keyId>.…`); null for a malformed one, which no key opens. */
export function sealedKeyIdOrNull(sealed: string): string | null {
  try {
    return parse(sealed).keyId;
  } catch (error) {
    if (error instanceof VaultError) return null;
    throw error;
  }
}

/**
 * A JSON array of strings is an unambiguous encoding: no choice of ids can make two different bindings
 * produce the same bytes (as a plain separator could). The key id is included so the header is authenticated too.
 */
function associatedData(keyId: string, binding: SecretBinding): Buffer {
  return Buffer.from(
    JSON.stringify(['forgelink-secret', FORMAT, keyId, binding.ownerId, binding.recordId, binding.purpose]),
    'utf8',
  );
}

function checkBinding(binding: SecretBinding): void {
  for (const field of ['ownerId', 'recordId', 'purpose'] as const) {
    if (typeof binding[field] !== 'string' || binding[field] === '') {
      throw new VaultError('vault_bad_binding', `A secret binding needs a non-empty ${field}.`);
    }
  }
}

function parse(sealed: string): Parsed {
  const parts = sealed.split('.');
  const [format, keyId, nonceText, bodyText] = parts;
  if (
    parts.length !== 4 ||
    format !== FORMAT ||
    keyId === undefined ||
    keyId === '' ||
    nonceText === undefined ||
    bodyText === undefined
  ) {
    throw new VaultError('vault_malformed', 'The sealed secret is not in a format this vault understands.');
  }
  const nonce = strictBase64url(nonceText);
  const body = strictBase64url(bodyText);
  if (nonce === null || body === null || nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) {
    throw new VaultError('vault_malformed', 'The sealed secret is not in a format this vault understands.');
  }
  return {
    keyId,
    nonce,
    ciphertext: body.subarray(0, body.length - TAG_BYTES),
    tag: body.subarray(body.length - TAG_BYTES),
  };
}

/**
 * Node's base64url decoder ignores characters it does not know and unused trailing bits, so two different
 * texts can decode to the same bytes. Requiring the canonical encoding makes every changed character fail.
 */
function strictBase64url(text: string): Buffer | null {
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}
