import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../core/index.ts';

/** How long a first-start setup link works. */
export const SETUP_LINK_LIFETIME_MS = 3600_000;

/** What a presented setup token is. Only `valid` lets the first admin be created. */
export type SetupTokenState = 'valid' | 'used' | 'expired' | 'wrong';

export type SetupLinks = {
  /** A new token, replacing any earlier one; the caller prints it once and forgets it. */
  issue(): { token: string; expiresAt: string };
  check(token: string): SetupTokenState;
  /**
   * Marks the token used when it is valid and returns its state before: synchronous, so of two requests with
   * the same token exactly one gets `valid`.
   */
  consume(token: string): SetupTokenState;
};

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The one-time link that lets the first person create the first admin account in the browser
 * (docs/security.md, "First start"). This process keeps only the token's SHA-256, its expiry and whether it
 * was used, in memory: a restart issues a new one and every earlier link stops working.
 */
export function createSetupLinks(deps: { clock: Clock; lifetimeMs?: number }): SetupLinks {
  const lifetimeMs = deps.lifetimeMs ?? SETUP_LINK_LIFETIME_MS;
  let current: { hash: Buffer; expiresAt: number; used: boolean } | null = null;

  function check(token: string): SetupTokenState {
    if (current === null || !timingSafeEqual(digest(token), current.hash)) return 'wrong';
    if (current.used) return 'used';
    if (deps.clock.now().getTime() >= current.expiresAt) return 'expired';
    return 'valid';
  }

  return {
    issue() {
      const token = randomBytes(32).toString('base64url');
      const expiresAt = deps.clock.now().getTime() + lifetimeMs;
      current = { hash: digest(token), expiresAt, used: false };
      return { token, expiresAt: new Date(expiresAt).toISOString() };
    },
    check,
    consume(token) {
      const state = check(token);
      if (state === 'valid' && current !== null) current.used = true;
      return state;
    },
  };
}
