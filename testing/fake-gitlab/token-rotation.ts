import { isoNow, newTokenValue, today, type FakeState, type FakeToken } from './state.ts';

/**
 * GitLab's maximum personal access token lifetime (PersonalAccessToken::MAX_PERSONAL_ACCESS_TOKEN_LIFETIME_IN_DAYS
 * in app/models/personal_access_token.rb); instances may configure less, and a feature flag allows 400.
 */
export const MAX_TOKEN_LIFETIME_DAYS = 365;

/** PersonalAccessTokens::RotateService::EXPIRATION_PERIOD: a rotation without `expires_at` gets one week. */
export const DEFAULT_ROTATION_DAYS = 7;

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/** Why GitLab would refuse this `expires_at` for a rotated token, as its 400 message says it; null when fine. */
export function rotationExpiryProblem(state: FakeState, expiresAt: string): string | null {
  // PersonalAccessToken#expires_at_before_instance_max_expiry_date (validated on create, which a rotation is).
  const max = addDays(today(state), MAX_TOKEN_LIFETIME_DAYS);
  if (expiresAt > max) return `Expires at must be before ${max}`;
  // GitLab's model has no lower bound: a past date would give a token that is dead at once. The fake refuses it,
  // so that a client computing a wrong date fails loudly here instead of silently getting an expired token.
  if (expiresAt <= today(state)) return 'Expires at must be in the future';
  return null;
}

/**
 * PersonalAccessTokens::RotateService#execute: in one transaction the old token is revoked and a new one created
 * with the same name, description and scopes, linked to it through `previous_personal_access_token_id`; the new
 * one expires on `expiresAt`, or a week from today.
 */
export function rotateToken(state: FakeState, old: FakeToken, expiresAt: string | null): FakeToken {
  old.revoked = true;
  const rotated: FakeToken = {
    id: state.nextId.token++,
    token: newTokenValue(),
    userId: old.userId,
    name: old.name,
    description: old.description,
    scopes: [...old.scopes],
    expiresAt: expiresAt ?? addDays(today(state), DEFAULT_ROTATION_DAYS),
    revoked: false,
    createdAt: isoNow(state),
    lastUsedAt: null,
    previousTokenId: old.id,
  };
  state.tokens.set(rotated.token, rotated);
  state.tokenStats.rotations += 1;
  return rotated;
}

function byId(state: FakeState, id: number): FakeToken | undefined {
  for (const token of state.tokens.values()) if (token.id === id) return token;
  return undefined;
}

/** Tokens rotated from `token`, directly or through others, oldest first. */
function descendants(state: FakeState, token: FakeToken): FakeToken[] {
  const found: FakeToken[] = [];
  let parents = new Set([token.id]);
  while (parents.size > 0) {
    const children = [...state.tokens.values()].filter((t) => t.previousTokenId !== null && parents.has(t.previousTokenId));
    found.push(...children);
    parents = new Set(children.map((t) => t.id));
  }
  return found.sort((a, b) => a.id - b.id);
}

/**
 * Reuse detection (doc/api/personal_access_tokens.md, "Automatic reuse detection"): presenting a revoked token to
 * a rotate endpoint revokes every active token rotated from it (Gitlab::Auth::AuthFinders#revoke_token_family and
 * PersonalAccessTokens::RevokeTokenFamilyService, which walks `previous_personal_access_token_id` downwards).
 */
export function revokeTokenFamily(state: FakeState, revoked: FakeToken): void {
  for (const token of descendants(state, revoked)) token.revoked = true;
  state.tokenStats.familyRevocations += 1;
}

/** The whole chain `token` belongs to, from the first token to the newest rotation, oldest first. */
export function tokenFamily(state: FakeState, token: FakeToken): FakeToken[] {
  let root = token;
  for (let parent = root.previousTokenId; parent !== null; parent = root.previousTokenId) {
    const found = byId(state, parent);
    if (found === undefined) break;
    root = found;
  }
  return [root, ...descendants(state, root)];
}
