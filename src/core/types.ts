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
  checkedAt: string;
  createdAt: string;
};
