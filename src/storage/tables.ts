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
  api_key_hash: string;
  created_at: string;
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
  status: string;
  status_reason: string | null;
  ca_pem: string | null;
  instance_version: string | null;
  checked_at: string;
  created_at: string;
};

export type SecretsTable = {
  id: string;
  owner_id: string;
  connection_id: string;
  purpose: string;
  sealed: string;
  updated_at: string;
};

export type DatabaseSchema = {
  users: UsersTable;
  connections: ConnectionsTable;
  secrets: SecretsTable;
};
