import { createHash, randomBytes } from 'node:crypto';

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
