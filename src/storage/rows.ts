import type { Selectable } from 'kysely';
import type { Connection, ConnectionPatch, TokenRotation, User } from '../core/index.ts';
import { AccountJson, ConnectionKindColumn, ConnectionPolicyJson, ConnectionStatusColumn, CredentialsColumn, ProviderColumn, ScopesJson } from './schema.ts';
import type { ConnectionsTable, UsersTable } from './tables.ts';

export function userFromRow(row: Selectable<UsersTable>): User {
  return { id: row.id, name: row.name, isAdmin: row.is_admin === true || row.is_admin === 1, createdAt: row.created_at };
}

/** The user's columns selected next to another table's (sessions, API keys) by a join on `users`. */
export const JOINED_USER_COLUMNS = ['users.name as user_name', 'users.is_admin as user_is_admin', 'users.created_at as user_created_at'] as const;

/** The user of a row read with `JOINED_USER_COLUMNS`. */
export function joinedUser(row: { user_id: string; user_name: string; user_is_admin: Selectable<UsersTable>['is_admin']; user_created_at: string }): User {
  return userFromRow({
    id: row.user_id,
    name: row.user_name,
    is_admin: row.user_is_admin,
    created_at: row.user_created_at,
    api_key_hash: '',
    password_hash: null,
  });
}

/** Rows are parsed, not trusted: a hand-edited or half-migrated row fails here rather than deep inside a run. */
export function connectionFromRow(row: Selectable<ConnectionsTable>): Connection {
  return {
    id: row.id,
    userId: row.user_id,
    provider: ProviderColumn.parse(row.provider),
    kind: ConnectionKindColumn.parse(row.kind),
    baseUrl: row.base_url,
    host: row.host,
    label: row.label,
    account: row.account === null ? null : AccountJson.parse(JSON.parse(row.account)),
    scopes: ScopesJson.parse(JSON.parse(row.scopes)),
    expiresAt: row.expires_at,
    tokenExpiresAt: row.token_expires_at ?? null,
    status: ConnectionStatusColumn.parse(row.status),
    statusReason: row.status_reason,
    caPem: row.ca_pem,
    instanceVersion: row.instance_version,
    rotation: rotationFromRow(row),
    credentials: row.credentials === null || row.credentials === undefined ? null : CredentialsColumn.parse(row.credentials),
    policy: ConnectionPolicyJson.parse(JSON.parse(row.policy ?? '{}')),
    checkedAt: row.checked_at,
    createdAt: row.created_at,
  };
}

function rotationFromRow(row: Selectable<ConnectionsTable>): TokenRotation | null {
  if (row.rotation_lifetime_days === null || row.rotation_threshold_days === null) return null;
  return {
    enabled: Number(row.rotation_enabled) === 1,
    lifetimeDays: Number(row.rotation_lifetime_days),
    thresholdDays: Number(row.rotation_threshold_days),
    lastRotatedAt: row.rotated_at,
  };
}

/** The 0007 columns of a connection's rotation settings; null clears them (rotation off, never configured). */
function rotationToRow(rotation: TokenRotation | null) {
  return {
    rotation_enabled: rotation?.enabled === true ? 1 : 0,
    rotation_lifetime_days: rotation?.lifetimeDays ?? null,
    rotation_threshold_days: rotation?.thresholdDays ?? null,
    rotated_at: rotation?.lastRotatedAt ?? null,
  };
}

export function connectionToRow(connection: Connection): Selectable<ConnectionsTable> {
  return {
    id: connection.id,
    user_id: connection.userId,
    provider: connection.provider,
    kind: connection.kind,
    base_url: connection.baseUrl,
    host: connection.host,
    label: connection.label,
    account: connection.account === null ? null : JSON.stringify(connection.account),
    scopes: JSON.stringify(connection.scopes),
    expires_at: connection.expiresAt,
    token_expires_at: connection.tokenExpiresAt,
    status: connection.status,
    status_reason: connection.statusReason,
    ca_pem: connection.caPem,
    instance_version: connection.instanceVersion,
    checked_at: connection.checkedAt,
    created_at: connection.createdAt,
    ...rotationToRow(connection.rotation),
    credentials: connection.credentials,
    policy: JSON.stringify(connection.policy),
  };
}

export type { ConnectionPatch };

/** The columns a patch changes; keys whose value is `undefined` are left alone. */
export function connectionPatchToRow(patch: ConnectionPatch): Partial<Selectable<ConnectionsTable>> {
  const row: Partial<Selectable<ConnectionsTable>> = {};
  if (patch.kind !== undefined) row.kind = patch.kind;
  if (patch.baseUrl !== undefined) row.base_url = patch.baseUrl;
  if (patch.host !== undefined) row.host = patch.host;
  if (patch.label !== undefined) row.label = patch.label;
  if (patch.account !== undefined) row.account = patch.account === null ? null : JSON.stringify(patch.account);
  if (patch.scopes !== undefined) row.scopes = JSON.stringify(patch.scopes);
  if (patch.expiresAt !== undefined) row.expires_at = patch.expiresAt;
  if (patch.tokenExpiresAt !== undefined) row.token_expires_at = patch.tokenExpiresAt;
  if (patch.status !== undefined) row.status = patch.status;
  if (patch.statusReason !== undefined) row.status_reason = patch.statusReason;
  if (patch.caPem !== undefined) row.ca_pem = patch.caPem;
  if (patch.instanceVersion !== undefined) row.instance_version = patch.instanceVersion;
  if (patch.checkedAt !== undefined) row.checked_at = patch.checkedAt;
  if (patch.rotation !== undefined) Object.assign(row, rotationToRow(patch.rotation));
  if (patch.credentials !== undefined) row.credentials = patch.credentials;
  if (patch.policy !== undefined) row.policy = JSON.stringify(patch.policy);
  return row;
}
