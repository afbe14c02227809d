import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStorage } from '../../src/storage/index.ts';
import type { Storage, StorageOptions } from '../../src/storage/index.ts';

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh, empty place to open storage at (possibly several times); `dispose` removes it. */
export type TestTarget = { options: StorageOptions; dispose(): Promise<void> };

export type TestDatabase = {
  name: 'sqlite' | 'postgres';
  /** A fresh target. */
  createTarget(): Promise<TestTarget>;
  /** Migrated storage on a fresh target; its `close()` also removes the target. */
  open(): Promise<Storage>;
};

/**
 * Both backends, for `for (const db of databases())`. SQLite lives in a fresh temp dir; PostgreSQL in a fresh
 * uniquely named database on `TEST_DATABASE_URL` (default the local `postgres` database), dropped afterwards.
 * An unreachable PostgreSQL fails the test: a storage suite that silently skipped half its backends would lie.
 */
export function databases(): TestDatabase[] {
  return [withOpen('sqlite', createSqliteTarget), withOpen('postgres', createPostgresTarget)];
}

function withOpen(name: TestDatabase['name'], createTarget: () => Promise<TestTarget>): TestDatabase {
  return {
    name,
    createTarget,
    async open() {
      const target = await createTarget();
      let storage: Storage;
      try {
        storage = await openStorage(target.options);
      } catch (error) {
        await target.dispose();
        throw error;
      }
      return {
        ...storage,
        async close() {
          await storage.close();
          await target.dispose();
        },
      };
    },
  };
}

async function createSqliteTarget(): Promise<TestTarget> {
  const dataDir = await mkdtemp(join(tmpdir(), 'forgelink-storage-'));
  return {
    options: { dataDir },
    dispose: () => rm(dataDir, { recursive: true, force: true }),
  };
}

async function createPostgresTarget(): Promise<TestTarget> {
  const adminUrl = process.env['TEST_DATABASE_URL'] ?? DEFAULT_ADMIN_URL;
  const name = `forgelink_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'forgelink-storage-pg-'));
  return {
    options: { dataDir, databaseUrl: url.toString() },
    async dispose() {
      // FORCE ends sessions a failed test may have left open (PostgreSQL 13+).
      await withAdmin(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function withAdmin<T>(adminUrl: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (cause) {
    throw new Error(
      `PostgreSQL is not reachable at ${redact(adminUrl)}; the storage tests run on both SQLite and PostgreSQL. ` +
        'Start it (Debian: `apt-get install -y postgresql && pg_ctlcluster 15 main start`, trust auth for user ' +
        '`postgres` on 127.0.0.1) or point TEST_DATABASE_URL at a server where this user may create databases.',
      { cause },
    );
  }
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}
