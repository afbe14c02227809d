import type { ColumnType } from 'kysely';

/**
 * Row shapes as both databases hold them. Times are ISO-8601 text (`Date#toISOString`) on both, so they
 * compare and sort the same way everywhere; structured fields are JSON text for the same reason.
 */
export type UsersTable = {
  id: string;
  name: string;
  // SQLite keeps booleans as 0/1, PostgreSQL as true/false.
  is_admin: ColumnType<boolean | number, boolean, boolean>;
  /**
   * Retired by migration 0008, which moved every key hash to `api_keys`: it now holds `api_keys:<user id>`, which
   * no digest matches. Kept because SQLite cannot drop a UNIQUE column.
   */
  api_key_hash: string;
  created_at: string;
  /** `scrypt$N$r$p$salt$hash`, or null for a user who signs in with an API key only. */
  password_hash: string | null;
};

export type ConnectionsTable = {
  id: string;
  user_id: string;
  provider: string;
  kind: string;
  base_url: string;
  host: string;
  label: string;
  /** JSON of `Account`, or null. */
  account: string | null;
  /** JSON array of scope names. */
  scopes: string;
  expires_at: string | null;
  /** OAuth access token expiry (ISO time); null for personal access tokens. Added by migration 0004. */
  token_expires_at: string | null;
  status: string;
  status_reason: string | null;
  ca_pem: string | null;
  instance_version: string | null;
  checked_at: string;
  created_at: string;
  /** Migration 0007: opt-in self-rotation of a personal access token; a null lifetime means never configured. */
  /** 0 or 1 on both databases; defaults to 0 for rows written before 0007. */
  rotation_enabled: ColumnType<number, number | undefined, number>;
  rotation_lifetime_days: number | null;
  rotation_threshold_days: number | null;
  rotated_at: string | null;
  /** Migration 0014: `brokered` | `direct` for its runs, null for the server's default; JSON of the options it turns off. */
  credentials: ColumnType<string | null, string | null | undefined, string | null>;
  policy: ColumnType<string, string | undefined, string>;
};

export type SecretsTable = {
  id: string;
  owner_id: string;
  connection_id: string;
  purpose: string;
  sealed: string;
  updated_at: string;
};

// PostgreSQL's `pg` hands out bigint columns as strings (they may exceed 2^53); SQLite gives numbers.
type BigIntColumn = ColumnType<number | string, number, number>;

export type RunsTable = {
  id: string;
  user_id: string;
  /** Not a foreign key: a run's record outlives its connection's deletion. */
  connection_id: string;
  project: string;
  project_id: ColumnType<number | string | null, number | null, number | null>;
  project_path: string | null;
  project_web_url: string | null;
  branch: string | null;
  base_branch: string | null;
  /** JSON array of strings. */
  command: string;
  /** JSON array of origins. */
  allow_hosts: string;
  /** Migration 0010: the agent profile's name, and the image reference and digest the run used. */
  agent: string;
  image_ref: string;
  image_digest: string | null;
  /** JSON array of secret names; `[]` for runs made before migration 0009. */
  secrets: ColumnType<string, string | undefined, string>;
  timeout_ms: BigIntColumn;
  status: string;
  /** JSON of `RunError`, or null. */
  error: string | null;
  exit_code: number | null;
  /** JSON array of `Warning`. */
  warnings: string;
  /** JSON of `RunOutputs`. */
  outputs: string;
  /** JSON of `{ allowed, refused }`. */
  egress: string;
  /** Migration 0011: the clone's `--depth` and `--filter`, whether the repository cache was cold, warm or off, and timings. */
  clone_depth: ColumnType<number | null, number | null | undefined, number | null>;
  clone_filter: ColumnType<string | null, string | null | undefined, string | null>;
  repo_cache: ColumnType<string | null, string | null | undefined, string | null>;
  ready_ms: ColumnType<number | string | null, number | null | undefined, number | null>;
  clone_ms: ColumnType<number | string | null, number | null | undefined, number | null>;
  /** Migration 0012: `brokered` | `direct` (runs before it were direct), and JSON of `{ refused: [...], options? }`. */
  credentials: ColumnType<string, string | undefined, string>;
  policy: ColumnType<string, string | undefined, string>;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Migration 0011: the worker that took the run, and when a cancel was asked of it. */
  worker_id: ColumnType<string | null, string | null | undefined, string | null>;
  cancel_requested_at: ColumnType<string | null, string | null | undefined, string | null>;
};

export type RunLogsTable = {
  run_id: string;
  seq: number;
  at: string;
  stream: string;
  text: string;
};

export type SessionsTable = {
  /** SHA-256 (hex) of the session cookie's value. */
  id: string;
  user_id: string;
  csrf_token: string;
  created_at: string;
  last_seen_at: string;
  /** Idle expiry, moved forward as the session is used. */
  expires_at: string;
};

export type OAuthStatesTable = {
  id: string;
  state_hash: string;
  session_id: string;
  user_id: string;
  base_url: string;
  verifier_sealed: string;
  created_at: string;
  used_at: string | null;
};

export type AuditEventsTable = {
  id: string;
  at: string;
  owner_id: string;
  actor: string;
  action: string;
  connection_id: string | null;
  run_id: string | null;
  reason: string | null;
  details: string;
};
/** Migration 0006: a named lease and its current holder. */
/** Migration 0011: a process executing runs, and its last heartbeat (ISO time). */
export type WorkersTable = {
  id: string;
  host: string;
  pid: number;
  capacity: number;
  running: number;
  state: string;
  started_at: string;
  last_heartbeat_at: string;
};

export type LeasesTable = {
  name: string;
  holder: string;
  /** ISO time; once past, anyone may take the lease. */
  expires_at: string;
};

/** Migration 0006: one change of a connection's status. */
export type ConnectionEventsTable = {
  id: string;
  connection_id: string;
  owner_id: string;
  at: string;
  from_status: string;
  to_status: string;
  reason: string | null;
  /** When the webhook was handed this event; null until then. */
  notified_at: string | null;
};

/** Migration 0006: a notice sent about a connection (`expiring:7:2027-01-31`), at most once. */
export type ConnectionNoticesTable = {
  connection_id: string;
  notice: string;
  at: string;
};

/** Migration 0007: the write-ahead intent of a token rotation in progress (one per connection at most). */
export type TokenRotationsTable = {
  connection_id: string;
  owner_id: string;
  attempt_id: string;
  requested_expires_at: string;
  actor: string;
  reason: string;
  started_at: string;
  /** The new token, sealed; null until GitLab's answer arrived. */
  answer_sealed: string | null;
  /** JSON `{ tokenId, expiresAt, scopes, receivedAt }`; null with `answer_sealed`. */
  answer: string | null;
};

/** Migration 0008: a user's API keys; the key itself is never stored, only its SHA-256. */
export type ApiKeysTable = {
  id: string;
  user_id: string;
  name: string;
  /** The key's first characters, shown to people (`flk_ab12`); `flk_` for keys moved by migration 0008. */
  prefix: string;
  /** SHA-256 (hex) of the key. */
  key_hash: string;
  created_at: string;
  /** Recorded at most once a minute (API_KEY_USE_PRECISION_MS); null when never used since 0008. */
  last_used_at: string | null;
  /** Null while the key works. */
  revoked_at: string | null;
};

/** Migration 0009: a user's named secret, its value sealed (bound to the user, the row and the name). */
export type UserSecretsTable = {
  id: string;
  user_id: string;
  name: string;
  /** JSON array of origins. */
  hosts: string;
  sealed: string;
  created_at: string;
  updated_at: string;
  last_used_at: string | null;
};

export type DatabaseSchema = {
  api_keys: ApiKeysTable;
  users: UsersTable;
  connections: ConnectionsTable;
  secrets: SecretsTable;
  runs: RunsTable;
  run_logs: RunLogsTable;
  sessions: SessionsTable;
  oauth_states: OAuthStatesTable;
  audit_events: AuditEventsTable;
  leases: LeasesTable;
  workers: WorkersTable;
  connection_events: ConnectionEventsTable;
  connection_notices: ConnectionNoticesTable;
  token_rotations: TokenRotationsTable;
  user_secrets: UserSecretsTable;
};
