import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { Dialect } from 'kysely';
import pg from 'pg';
import type { ApiKeyStore, Clock, ConnectionEventStore, ConnectionStore, LeaseStore, OAuthStateStore, AuditStore, RunStore, SessionStore, UserSecretStore, UserStore, WorkerStore } from '../core/index.ts';
import { createApiKeyStore } from './api-keys.ts';
import { createConnectionEventStore } from './connection-events.ts';
import { createConnectionStore } from './connections.ts';
import { createLeaseStore } from './leases.ts';
import { migrateToLatest } from './migrations.ts';
import { createOAuthStateStore } from './oauth-states.ts';
import { createAuditStore } from './audit.ts';
import { createRunStore } from './runs.ts';
import { createSessionStore } from './sessions.ts';
import { createSqliteDialect } from './sqlite-dialect.ts';
import type { DatabaseSchema } from './tables.ts';
import { createUserSecretStore } from './user-secrets.ts';
import { createUserStore } from './users.ts';
import { createWorkerStore } from './workers.ts';

export const SQLITE_FILENAME = 'forgelink.db';

export type StorageOptions = {
  /** Holds the SQLite file when no `databaseUrl` is given. */
  dataDir: string;
  /** `postgres://…` selects PostgreSQL. */
  databaseUrl?: string | undefined;
  clock?: Clock;
};

export type Storage = {
  kind: 'sqlite' | 'postgres';
  db: Kysely<DatabaseSchema>;
  users: UserStore;
  apiKeys: ApiKeyStore;
  connections: ConnectionStore;
  runs: RunStore;
  audit: AuditStore;
  sessions: SessionStore;
  oauthStates: OAuthStateStore;
  connectionEvents: ConnectionEventStore;
  leases: LeaseStore;
  /** Users' named secrets (sealed). */
  userSecrets: UserSecretStore;
  /** One trivial query: resolves when the database answers (`GET /readyz`). */
  ping(): Promise<void>;
  /** The processes executing runs and their heartbeats. */
  workers: WorkerStore;
  /** PostgreSQL's connection pool (the run queue and the signals between processes use it); null with SQLite. */
  pool: pg.Pool | null;
  close(): Promise<void>;
};

const systemClock: Clock = { now: () => new Date() };

/** Opens the database named by the options, applies pending migrations, and returns the stores over it. */
export async function openStorage(options: StorageOptions): Promise<Storage> {
  const { kind, dialect, pool } = await chooseDialect(options);
  const db = new Kysely<DatabaseSchema>({ dialect });
  try {
    await migrateToLatest(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return {
    kind,
    db,
    users: createUserStore(db),
    apiKeys: createApiKeyStore(db),
    connections: createConnectionStore(db, options.clock ?? systemClock, kind),
    runs: createRunStore(db, kind),
    audit: createAuditStore(db),
    sessions: createSessionStore(db),
    oauthStates: createOAuthStateStore(db),
    connectionEvents: createConnectionEventStore(db),
    leases: createLeaseStore(db),
    userSecrets: createUserSecretStore(db),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    workers: createWorkerStore(db),
    pool,
    close: () => db.destroy(),
  };
}

async function chooseDialect(options: StorageOptions): Promise<{ kind: Storage['kind']; dialect: Dialect; pool: pg.Pool | null }> {
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
    // An idle client whose server went away emits 'error' on the pool; unhandled, that would end the
    // process. The next query checks out a fresh client and reports the failure where it can be handled.
    pool.on('error', () => {});
    return { kind: 'postgres', dialect: new PostgresDialect({ pool }), pool };
  }
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const path = join(options.dataDir, SQLITE_FILENAME);
  // SQLite would create the file 0644 (under the usual umask); it gives the -wal and -shm files the mode of
  // the database file, so creating it 0600 first keeps all three private (password and API-key hashes, run logs).
  await (await open(path, 'a', 0o600)).close();
  return { kind: 'sqlite', dialect: createSqliteDialect({ path }), pool: null };
}
