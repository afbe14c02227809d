import type { AuditStore, Clock, Connection, ConnectionStore, ForgelinkError, GitLabClientFactory, Vault } from '../core/index.ts';

/**
 * How long an intent without an answer is presumed to belong to a rotation still under way. Past it, whoever finds
 * the intent asks GitLab about the old token. It must exceed the longest a rotation request can last on both sides:
 * GitLab ends every request after 60 s (Rack::Timeout's service_timeout, GITLAB_RAILS_RACK_TIMEOUT; GitLab docs:
 * administration/operations/puma.md), and our side gives up after ROTATION_REQUEST_MS plus about 20 s of retries
 * to store the answer.
 */
export const ROTATION_SETTLE_MS = 120_000;
/**
 * How long a rotation's request can take on our side: two attempts of the HTTP timeout (15 s) and a rate-limit wait
 * of at most 10 s (compose.ts configures the rotator's client so). Callers wait this long at most for a rotation that
 * another caller started; past it, the rotation's outcome is unknown until ROTATION_SETTLE_MS, and nobody waits.
 */
export const ROTATION_REQUEST_MS = 45_000;
/** How long one caller waits at most for another caller's rotation of the same connection to finish. */
export const ROTATION_WAIT_MS = 30_000;

/** Where a rotation stands; the crash tests stop the process right after one of these. */
export type RotationStep = 'claimed' | 'answer-received' | 'answer-recorded';

/** Who wants the rotation and why, for the audit trail: a user id or `system`; `use`, `manual`, `monitor`, `recovery`. */
export type RotationCause = { actor: string; reason: string };

export type RotationOutcome =
  /** The token was rotated now, or an interrupted rotation was completed (`recovered`). */
  | { status: 'rotated'; connection: Connection; recovered: boolean }
  /** Nothing to do: rotation off, or the token is not due. */
  | { status: 'current'; connection: Connection }
  /** Another rotation of this connection is under way (in this or another process), until `until` (epoch ms) at most. */
  | { status: 'busy'; until: number }
  /** Due, but runs are using the token right now: rotating would revoke it under them. */
  | { status: 'deferred' }
  /** GitLab refused, or rotation is not possible; nothing changed at GitLab. */
  | { status: 'failed'; error: ForgelinkError }
  /** GitLab was asked but its answer did not arrive; the intent stays until GitLab can tell what happened. */
  | { status: 'unknown'; error: unknown }
  /** GitLab rotated but the answer was lost: the connection is marked revoked and must be reconnected. */
  | { status: 'lost'; connection: Connection }
  /** The connection no longer exists. */
  | { status: 'gone' };

/** What the token provider needs of the rotator (tokens/provider.ts): rotate a due token, or wait for a rotation under way. */
export type RotatorForTokens = {
  rotateIfDue(connection: Connection): Promise<RotationOutcome>;
  settle(connection: Connection): Promise<RotationOutcome>;
};

export type RotatorLogger = { info(meta: object, message: string): void; warn(meta: object, message: string): void };

export type RotatorDeps = {
  store: ConnectionStore;
  vault: Vault;
  /** Clients made for one exact token: rotation and its recovery never go through the token provider. */
  gitlab: GitLabClientFactory;
  clock: Clock;
  audit?: AuditStore;
  logger?: RotatorLogger;
  /** Whether runs are using the connection's token now (a rotation revokes it under them); default: never. */
  inUse?: (connection: Connection) => Promise<boolean>;
  /** Default ROTATION_SETTLE_MS. */
  settleMs?: number;
  /** Default ROTATION_REQUEST_MS. */
  requestMs?: number;
  /** Default ROTATION_WAIT_MS. */
  waitMs?: number;
  /** How often a waiting caller looks again; default 200 ms. */
  pollMs?: number;
  newAttemptId?: () => string;
  /**
   * TEST HOOK, never set in production: called right after each step of a rotation. The crash tests' child process
   * kills itself here (test/tokens/rotation-worker.ts) to prove a rotation survives a crash at that point.
   */
  afterStep?: (step: RotationStep) => void;
};

/** The status reason of a connection whose rotation happened at GitLab but whose answer was lost. */
export const LOST_REASON =
  'forgelink rotated this token at GitLab, but stopped before it could store the new one, so GitLab has revoked the ' +
  'old token and forgelink does not have its successor. Create a new token and reconnect. forgelink did not try again, ' +
  'since rotating the old token again would make GitLab revoke the successor as well (reuse detection).';
