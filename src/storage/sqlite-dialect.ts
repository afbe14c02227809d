import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue } from 'node:sqlite';
import { SqliteDialect } from 'kysely';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * Kysely's SqliteDialect is written for better-sqlite3. node:sqlite differs in two ways that matter:
 * statements take parameters spread rather than as an array, and there is no `reader` flag. A statement
 * that yields columns (a SELECT, or anything with RETURNING) is a reader, which `columns()` tells us.
 * We checked npm for a maintained node:sqlite dialect; none was established enough to depend on.
 */
export function createSqliteDialect(options: { path: string; busyTimeoutMs?: number }): SqliteDialect {
  return new SqliteDialect({
    database: async () => {
      const database = new DatabaseSync(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
      // WAL lets readers proceed while one writer writes; SQLite leaves foreign keys off unless asked.
      database.exec('PRAGMA journal_mode = WAL');
      database.exec('PRAGMA foreign_keys = ON');
      database.exec('PRAGMA synchronous = NORMAL');
      return adaptDatabase(database);
    },
  });
}

/** How many prepared statements a database keeps for reuse (forgelink's queries are a few hundred distinct texts). */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Statements are kept by their SQL text and reused, least recently used dropped first: compiling the SQL again for
 * every query cost more CPU than running most of them. `all` and `run` finish before they return, so one statement
 * serves every caller in turn; `iterate` yields rows across turns and gets a statement of its own.
 */
function adaptDatabase(database: DatabaseSync): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => {
      statements.clear();
      database.close();
    },
    prepare: (sql) => {
      const cached = statements.get(sql);
      if (cached !== undefined) {
        statements.delete(sql);
        statements.set(sql, cached);
        return cached;
      }
      const statement = adaptStatement(database, sql);
      statements.set(sql, statement);
      if (statements.size > STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value as string);
      return statement;
    },
  };
}

function adaptStatement(database: DatabaseSync, sql: string): SqliteStatement {
  const statement = database.prepare(sql);
  return {
    reader: statement.columns().length > 0,
    all: (parameters) => statement.all(...toInputs(parameters)).map(plainRow),
    run: (parameters) => statement.run(...toInputs(parameters)),
    iterate: (parameters) => plainRows(database.prepare(sql).iterate(...toInputs(parameters))),
  };
}

// node:sqlite returns rows with a null prototype; PostgreSQL rows are plain objects. Copying makes the two
// backends hand out the same kind of value (deepStrictEqual and friends tell them apart).
function plainRow(row: object): Record<string, unknown> {
  return { ...row };
}

function* plainRows(rows: Iterable<object>): IterableIterator<Record<string, unknown>> {
  for (const row of rows) yield plainRow(row);
}

function toInputs(parameters: ReadonlyArray<unknown>): SQLInputValue[] {
  return parameters.map(toInput);
}

function toInput(value: unknown): SQLInputValue {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
    return value;
  }
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`node:sqlite cannot bind a parameter of type ${typeof value}.`);
}
