import { daysUntil } from './capabilities.ts';
import { InputError } from './errors.ts';
import type { Connection, TokenRotation } from './types.ts';

/**
 * Scopes that let a personal access token rotate itself: `allow_access_with_scope :api` and `:self_rotate` in
 * GitLab's lib/api/personal_access_tokens/self_rotation.rb (doc/api/personal_access_tokens.md, "Self-rotate").
 */
export const ROTATION_SCOPES = ['api', 'self_rotate'] as const;

/** GitLab refuses a longer lifetime (PersonalAccessToken::MAX_PERSONAL_ACCESS_TOKEN_LIFETIME_IN_DAYS). */
export const MAX_ROTATION_LIFETIME_DAYS = 365;
export const DEFAULT_ROTATION_LIFETIME_DAYS = 30;
export const DEFAULT_ROTATION_THRESHOLD_DAYS = 7;

/** `POST /personal_access_tokens/self/rotate` arrived in GitLab 16.10. */
const SELF_ROTATE_SINCE = { major: 16, minor: 10 };

/** Why this connection's token cannot rotate itself, in words for the user; null when it can. */
export function rotationUnsupported(connection: Pick<Connection, 'kind' | 'scopes' | 'instanceVersion'>): string | null {
  if (connection.kind === 'oauth') {
    return 'OAuth connections renew their tokens on their own; rotation is for personal, project and group access tokens.';
  }
  const allowed: readonly string[] = ROTATION_SCOPES;
  if (!connection.scopes.some((scope) => allowed.includes(scope))) {
    return (
      `GitLab lets a token rotate itself only with the api or self_rotate scope, and this one has ${connection.scopes.join(', ') || 'none'}. ` +
      'Create a token that also has self_rotate and reconnect, or leave rotation off.'
    );
  }
  const version = parseVersion(connection.instanceVersion);
  if (version !== null && (version.major < SELF_ROTATE_SINCE.major || (version.major === SELF_ROTATE_SINCE.major && version.minor < SELF_ROTATE_SINCE.minor))) {
    return `This GitLab (${connection.instanceVersion}) is older than 16.10, which added self-rotation of tokens.`;
  }
  return null;
}

function parseVersion(version: string | null): { major: number; minor: number } | null {
  const match = version === null ? null : /^(\d+)\.(\d+)/.exec(version);
  return match === null ? null : { major: Number(match[1]), minor: Number(match[2]) };
}

/** Whether an opted-in token has at most its threshold of days left; a token without expiry is never due. */
export function isRotationDue(connection: Pick<Connection, 'kind' | 'expiresAt' | 'rotation'>, now: Date): boolean {
  const { rotation } = connection;
  if (connection.kind !== 'pat' || rotation === null || !rotation.enabled || connection.expiresAt === null) return false;
  return daysUntil(connection.expiresAt, now) <= rotation.thresholdDays;
}

/** The `expires_at` to ask GitLab for: `lifetimeDays` after today (UTC), as YYYY-MM-DD. */
export function rotationExpiryDate(now: Date, lifetimeDays: number): string {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return new Date(today + lifetimeDays * 86_400_000).toISOString().slice(0, 10);
}

/** What a user may send to change rotation settings; omitted numbers keep their current (or default) value. */
export type RotationSettingsInput = { enabled: boolean; lifetimeDays?: number | undefined; thresholdDays?: number | undefined };

/**
 * The settings after applying `input` to `current`, checked: a lifetime of 2 to 365 days and a threshold of at least
 * one day and less than the lifetime (otherwise every rotation would be due again at once). Throws an InputError
 * naming the field.
 */
export function applyRotationSettings(current: TokenRotation | null, input: RotationSettingsInput): TokenRotation {
  const lifetimeDays = input.lifetimeDays ?? current?.lifetimeDays ?? DEFAULT_ROTATION_LIFETIME_DAYS;
  const thresholdDays = input.thresholdDays ?? current?.thresholdDays ?? Math.min(DEFAULT_ROTATION_THRESHOLD_DAYS, lifetimeDays - 1);
  if (!Number.isInteger(lifetimeDays) || lifetimeDays < 2 || lifetimeDays > MAX_ROTATION_LIFETIME_DAYS) {
    throw new InputError(
      'invalid_rotation',
      `The lifetime of a rotated token is a whole number of days from 2 to ${MAX_ROTATION_LIFETIME_DAYS} (GitLab's maximum).`,
      { field: 'rotation.lifetimeDays' },
    );
  }
  if (!Number.isInteger(thresholdDays) || thresholdDays < 1 || thresholdDays >= lifetimeDays) {
    throw new InputError(
      'invalid_rotation',
      `The threshold is a whole number of days, at least 1 and less than the lifetime (${lifetimeDays}), or a fresh token would be due again at once.`,
      { field: 'rotation.thresholdDays' },
    );
  }
  return { enabled: input.enabled, lifetimeDays, thresholdDays, lastRotatedAt: current?.lastRotatedAt ?? null };
}

/**
 * GitLab's answer to a rotation, kept sealed on the intent until it is promoted to the connection's token. The new
 * token is sealed for (owner, the intent's `attemptId`, ROTATED_TOKEN_PURPOSE), so it opens for this attempt only.
 */
export type RotationAnswer = {
  sealedToken: string;
  tokenId: number;
  expiresAt: string | null;
  /** Null when GitLab's answer did not list them (the old token's scopes carry over). */
  scopes: string[] | null;
  receivedAt: string;
};

export const ROTATED_TOKEN_PURPOSE = 'rotated_token';

/**
 * The write-ahead record of one rotation of a connection's personal access token (migration 0007). It is written
 * and committed before GitLab is asked, gets GitLab's answer (sealed) the moment it arrives, and is removed in the
 * transaction that makes the new token the connection's. Whoever finds one left behind knows a rotation may have
 * happened and must never rotate with the old token again (GitLab's reuse detection would revoke the new one).
 */
export type RotationIntent = {
  connectionId: string;
  ownerId: string;
  /** Unique per attempt: an answer is recorded only on the attempt that asked for it. */
  attemptId: string;
  /** The `expires_at` asked for (YYYY-MM-DD). */
  requestedExpiresAt: string;
  /** Who started it (a user id, or `system`) and why (`run`, `check`, `manual`, `monitor`, …), for the audit entry. */
  actor: string;
  reason: string;
  startedAt: string;
  answer: RotationAnswer | null;
};

/** What `POST /personal_access_tokens/self/rotate` answered: the successor token and its fields. */
export type RotatedToken = { token: string; id: number; expiresAt: string | null; scopes: string[] | null };
