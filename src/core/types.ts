/** Domain types shared by every part. Field names match the JSON shapes in docs/contract.md. */

export type ConnectionKind = 'pat' | 'oauth';
/** Every status a connection can have. Storage's column schema and the API's schemas are built from this list. */
export const CONNECTION_STATUSES = ['active', 'expired', 'revoked', 'invalid', 'unreachable'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

export type WarningCode =
  | 'no_expiry'
  | 'expires_soon'
  | 'broad_scope'
  | 'cannot_push'
  | 'cannot_open_merge_requests'
  | 'cannot_file_issues'
  | 'cannot_read_user'
  | 'default_branch_unprotected';

export type Warning = { code: WarningCode; message: string };

export type Capabilities = {
  clone: boolean;
  push: boolean;
  mergeRequestsViaApi: boolean;
  mergeRequestsViaPushOptions: boolean;
  issues: boolean;
  readUser: boolean;
};

/** The GitLab account actions are attributed to. */
export type Account = { id: number; username: string; name: string };

/** What `GET /personal_access_tokens/self` tells about a token. */
export type TokenInfo = {
  id: number;
  name: string;
  scopes: string[];
  expiresAt: string | null;
  active: boolean;
  revoked: boolean;
  userId: number;
};

export type InstanceInfo = { version: string; revision: string; enterprise: boolean };

export type Project = {
  id: number;
  pathWithNamespace: string;
  defaultBranch: string | null;
  webUrl: string;
  httpUrlToRepo: string;
  accessLevel: number | null;
};

export type User = { id: string; name: string; isAdmin: boolean; createdAt: string };

/** An API key as stored: its SHA-256 only, never the key. `revokedAt` set means it no longer authenticates. */
export type ApiKey = {
  id: string;
  userId: string;
  name: string;
  /** The key's first characters (`flk_ab12`), for people to recognise it. */
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

/** An API key as `GET /api/v1/keys` and `forgelink keys list` show it. */
export type ApiKeyView = Pick<ApiKey, 'id' | 'name' | 'prefix' | 'createdAt' | 'lastUsedAt'>;

/** A key just made: the only time its value is ever shown. */
export type CreatedApiKey = { id: string; name: string; key: string; createdAt: string };

/**
 * A personal access token connection's opt-in self-rotation (issue: token lifecycle): when the token has at most
 * `thresholdDays` left, forgelink rotates it through GitLab for a successor living `lifetimeDays`.
 */
export type TokenRotation = {
  enabled: boolean;
  lifetimeDays: number;
  thresholdDays: number;
  /** When forgelink last rotated the token (ISO time); null before the first rotation. */
  lastRotatedAt: string | null;
};

/**
 * How a run's sandbox holds its credentials: `brokered` (surrogates; the egress proxy swaps in the real ones and
 * applies the run's policy) or `direct` (the real token as `GITLAB_TOKEN`). docs/security.md, "Credential broker".
 */
export type CredentialsMode = 'brokered' | 'direct';
export const CREDENTIALS_MODES: readonly CredentialsMode[] = ['brokered', 'direct'];

/**
 * The run policy's options (docs/contract.md, "Run policy"): what a brokered run may do beyond its own project's
 * branches. The operator's FORGELINK_POLICY sets them; a connection and a run may only turn them off.
 */
export type PolicyOptions = { allowTags: boolean; allowMerge: boolean; readOtherProjects: boolean };
/** What a connection or a run asks of the options: one left out inherits; `false` turns it off. */
export type PolicyOverrides = Partial<PolicyOptions>;
/** A connection as stored, without its secret. */
export type Connection = {
  id: string;
  userId: string;
  provider: 'gitlab';
  kind: ConnectionKind;
  baseUrl: string;
  host: string;
  label: string;
  account: Account | null;
  scopes: string[];
  /** When the connection's authorization ends: a personal access token's expiry date; null for OAuth (refreshed). */
  expiresAt: string | null;
  /** OAuth: when the current access token expires (ISO time); forgelink refreshes it before then. Null for PATs. */
  tokenExpiresAt: string | null;
  status: ConnectionStatus;
  statusReason: string | null;
  /** PEM bundle of the instance's private certificate authority, if any. Not a secret. */
  caPem: string | null;
  instanceVersion: string | null;
  /** Self-rotation settings; null until the user configures them (rotation off). Never set for OAuth. */
  rotation: TokenRotation | null;
  /** How its runs hold credentials when a run does not say; null: the server's (FORGELINK_CREDENTIALS). */
  credentials: CredentialsMode | null;
  /** The run policy's options this connection turns off for its runs (only `false` values are kept); `{}`: none. */
  policy: PolicyOverrides;
  checkedAt: string;
  createdAt: string;
};

/** A connection as the API shows it (docs/contract.md, "A connection"). */
export type ConnectionView = {
  id: string;
  provider: 'gitlab';
  kind: ConnectionKind;
  baseUrl: string;
  host: string;
  label: string;
  account: Account | null;
  scopes: string[];
  expiresAt: string | null;
  /** OAuth: when the current access token expires; forgelink refreshes it on its own. Null for PATs. */
  tokenExpiresAt: string | null;
  status: ConnectionStatus;
  statusReason: string | null;
  capabilities: Capabilities;
  warnings: Warning[];
  instanceVersion: string | null;
  hasCustomCa: boolean;
  /** Self-rotation of a personal access token; null when never configured (off). */
  rotation: TokenRotation | null;
  /** How its runs hold credentials when a run does not say; null: the server's. */
  credentials: CredentialsMode | null;
  /** The run policy's options this connection turns off for its runs. */
  policy: PolicyOverrides;
  checkedAt: string;
  createdAt: string;
};

/**
 * A new user, with their first API key (named `initial`) when `apiKeyHash` is given — a user made on the setup page
 * has none until they create one; `apiKeyPrefix` is what people are shown of it (default `flk_`).
 */
export type NewUser = { id: string; name: string; isAdmin: boolean; apiKeyHash?: string; apiKeyPrefix?: string; createdAt: string };

export type NewApiKey = Omit<ApiKey, 'lastUsedAt' | 'revokedAt'> & { keyHash: string };

/** A dashboard session. `id` is the SHA-256 of the cookie's value; the value itself is never stored. */
export type Session = {
  id: string;
  userId: string;
  /** Sent back in every dashboard form; a request without it changes nothing. */
  csrfToken: string;
  createdAt: string;
  lastSeenAt: string;
  /** Idle expiry, moved forward while the session is used. */
  expiresAt: string;
};

export type StoredSecret = {
  id: string;
  ownerId: string;
  connectionId: string;
  purpose: string;
  sealed: string;
};

export type ConnectionPatch = Partial<Omit<Connection, 'id' | 'userId' | 'provider' | 'createdAt'>>;

/** One started OAuth authorization, until its callback arrives. The `state` itself is never stored, only its hash. */
export type OAuthState = {
  id: string;
  /** SHA-256 (hex) of the `state` parameter. */
  stateHash: string;
  sessionId: string;
  userId: string;
  baseUrl: string;
  /** The PKCE code verifier, sealed for (owner: userId, record: id, purpose: `pkce_verifier`). */
  verifierSealed: string;
  createdAt: string;
  usedAt: string | null;
};

/** A project as a run needs it. */
export type ProjectDetail = Project & { archived: boolean };

export type ProtectedBranch = {
  name: string;
  pushAccessLevels: number[];
  mergeAccessLevels: number[];
  allowForcePush: boolean;
};

export type GitLabMergeRequest = {
  iid: number;
  title: string;
  sourceBranch: string;
  targetBranch: string;
  webUrl: string;
  authorId: number;
  createdAt: string;
};

export type GitLabIssue = { iid: number; title: string; webUrl: string; authorId: number; createdAt: string };

/** What GitLab's token endpoint handed out. */
export type OAuthTokenSet = {
  accessToken: string;
  /** Null when the answer carried none (RFC 6749 §6 lets a server keep the old one); GitLab always sends one. */
  refreshToken: string | null;
  /** When the access token expires (ISO time), from `expires_in` and our clock; null when GitLab gave no lifetime. */
  expiresAt: string | null;
  /** The granted scopes, when the answer says. */
  scopes: string[] | null;
};

export type OAuthTokenDetails = { resourceOwnerId: number; scopes: string[]; expiresInSeconds: number | null };

/** What forgelink did with a connection, its token or an API key, for the audit log. */
export type AuditAction =
  | 'token.decrypted'
  | 'token.refreshed'
  | 'token.rotated'
  | 'connection.created'
  | 'connection.checked'
  | 'connection.status_changed'
  | 'connection.disconnected'
  | 'run.started'
  | 'run.finished'
  | 'api_key.created'
  | 'api_key.revoked'
  | 'secret.set'
  | 'secret.deleted'
  | 'secret.decrypted'
  | 'broker.allowed'
  | 'broker.refused';

export type AuditEntry = {
  id: string;
  at: string;
  /** The user the connection or run belongs to. */
  ownerId: string;
  /** Who caused it: a user id, or `system` (monitor, rotation). */
  actor: string;
  action: AuditAction;
  connectionId: string | null;
  runId: string | null;
  /** Why a token was decrypted: `run`, `check`, `projects`, `doctor`, `refresh`, `rotation`, `monitor`, … */
  reason: string | null;
  details: Record<string, unknown>;
};

/**
 * One change of a connection's status, with the reason it changed. The connection store writes one in the same
 * transaction as every update that changes `status`, whoever made it (a check, the monitor, a run, a refresh).
 */
export type ConnectionEvent = {
  id: string;
  connectionId: string;
  ownerId: string;
  at: string;
  from: ConnectionStatus;
  to: ConnectionStatus;
  reason: string | null;
};

/**
 * What the operator's notification hook receives (`FORGELINK_NOTIFY_WEBHOOK`): about one connection, never a
 * token. `connection.expiring` is sent once per connection and threshold (7 days, 1 day); `connection.status_changed`
 * for every status transition.
 */
export type ConnectionNotification = {
  event: 'connection.expiring' | 'connection.status_changed';
  at: string;
  connection: {
    id: string;
    label: string;
    host: string;
    account: Account | null;
    expiresAt: string | null;
    status: ConnectionStatus;
  };
  ownerName: string | null;
  reason: string | null;
  /** `connection.status_changed`: the status before. */
  previousStatus?: ConnectionStatus;
  /** `connection.expiring`: whole days until the expiry date, and the threshold that was crossed. */
  daysLeft?: number;
  thresholdDays?: number;
};

/** A user's named secret as lists show it: never its value. */
export type UserSecret = {
  id: string;
  userId: string;
  /** An environment variable name (core/secrets.ts). */
  name: string;
  /** Origins (`host:port`) the secret is meant for. */
  hosts: string[];
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
};

/** A user secret with its sealed value, sealed under `bindingForUserSecret` (vault/binding.ts). */
export type SealedUserSecret = UserSecret & { sealed: string };
