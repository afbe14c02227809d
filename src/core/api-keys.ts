import { createHash, randomBytes } from 'node:crypto';
import { InputError } from './errors.ts';

/**
 * API keys are 32 random bytes behind a recognisable prefix (so secret scanners can spot a leaked
 * one). Only a SHA-256 digest is stored: the key is high-entropy, so a slow hash adds nothing.
 */
export const API_KEY_PREFIX = 'flk_';

export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function looksLikeApiKey(value: string): boolean {
  return /^flk_[A-Za-z0-9_-]{43}$/.test(value);
}

/** Short random ids with a readable prefix: `con_3f9a…`, `usr_…`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(10).toString('hex')}`;
}

/**
 * The start of a key shown to people so they can tell their keys apart (`flk_ab12`): 4 of the key's 43 random
 * characters, too few to help a guesser. Keys moved from before key management have only `flk_` (their hash alone
 * was kept).
 */
export function apiKeyPrefix(key: string): string {
  return key.slice(0, API_KEY_PREFIX.length + 4);
}

export const API_KEY_NAME_MAX = 64;

/** A key's name as given, trimmed; 1–64 characters without control characters, else an InputError naming `name`. */
export function apiKeyName(raw: string): string {
  const name = raw.trim();
  if (name === '') throw new InputError('invalid_name', 'Give the key a name, such as the machine or script that uses it.', { field: 'name' });
  if ([...name].length > API_KEY_NAME_MAX) {
    throw new InputError('invalid_name', `A key's name is at most ${API_KEY_NAME_MAX} characters.`, { field: 'name' });
  }
  if (/\p{Cc}/u.test(name)) throw new InputError('invalid_name', "A key's name cannot contain control characters.", { field: 'name' });
  return name;
}

/** How precisely a key's last use is recorded: a busy key costs one write a minute, not one per request. */
export const API_KEY_USE_PRECISION_MS = 60_000;

/** Whether a use at `now` should be written, given the last one recorded (ISO time or null). */
export function shouldRecordKeyUse(lastUsedAt: string | null, now: Date): boolean {
  return lastUsedAt === null || now.getTime() - Date.parse(lastUsedAt) >= API_KEY_USE_PRECISION_MS;
}
