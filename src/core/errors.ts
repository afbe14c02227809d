/**
 * The small set of typed errors every part throws. Only `server/` maps them to HTTP status codes and
 * only `cli/` to exit messages; nothing branches on a message string.
 */

export type ErrorOptions = { field?: string; cause?: unknown };

/** Base class: `code` is stable and machine-readable, `message` is a sentence a user can act on. */
export class ForgelinkError extends Error {
  readonly code: string;
  readonly field: string | undefined;

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.field = options.field;
  }
}

/** The caller sent something malformed: names the field. */
export class InputError extends ForgelinkError {}

/** No credentials, or credentials we do not recognise. */
export class AuthenticationError extends ForgelinkError {}

/** Authenticated, but this action is not allowed. Never used to hide existence (that is NotFoundError). */
export class NotAllowedError extends ForgelinkError {}

/** The object does not exist, or belongs to someone else. */
export class NotFoundError extends ForgelinkError {}

/** The request conflicts with the current state. */
export class ConflictError extends ForgelinkError {}

/**
 * Why a request to GitLab did not give us what we needed. The connect flow turns these into words a
 * user can act on; the server maps them to 4xx for user-supplied instances and 502 otherwise.
 */
export type UpstreamReason =
  | 'blocked_address' // the outbound-address policy refused the resolved address
  | 'unreachable' // DNS failure, refused connection, timeout
  | 'certificate' // TLS verification failed
  | 'not_gitlab' // answered, but not like a GitLab instance
  | 'token_invalid' // unknown token (401 without more detail)
  | 'token_expired'
  | 'token_revoked'
  | 'insufficient_scope'
  | 'forbidden' // 403 for another reason than scope (blocked account, missing permission)
  | 'not_found' // GitLab answered 404 for an object
  | 'rate_limited' // 429 that did not recover within our bound
  | 'server_error' // 5xx that did not recover
  | 'bad_response'; // a response we could not parse

/** GitLab said no, or could not be reached. Carries the low-level `cause`. */
export class UpstreamError extends ForgelinkError {
  readonly reason: UpstreamReason;
  readonly status: number | undefined;
  /** `rate_limited`: how long GitLab asked us to wait (Retry-After), when it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(reason: UpstreamReason, message: string, options: ErrorOptions & { status?: number; retryAfterSeconds?: number } = {}) {
    super(`gitlab_${reason}`, message, options);
    this.reason = reason;
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** A sealed secret could not be opened: tampered, moved to another record, or an unknown key. */
export class VaultError extends ForgelinkError {}

/**
 * A connection's sealed token could not be opened (tampered, moved, or sealed with a key the keyring lacks). Not a
 * server fault: the connection cannot be used until the key is restored or the account reconnected. `code` is the
 * vault's (`vault_unknown_key`, `vault_open_failed`, `vault_malformed`); `keyId` the key it was sealed with, when known.
 */
export class SealedTokenError extends ConflictError {
  readonly keyId: string | null;

  constructor(code: string, message: string, options: ErrorOptions & { keyId: string | null }) {
    super(code, message, options);
    this.keyId = options.keyId;
  }
}
