import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ConflictError } from '../core/index.ts';

export const LOCK_FILENAME = 'forgelink.lock';

export type ProcessLock = { release(): void };

/**
 * Makes this process the only one executing runs from `dataDir` (docs/architecture.md, "Processes"): an exclusive
 * SQLite lock (an fcntl lock the kernel drops when the process ends, however it ends) on a file of its own, held
 * until `release`. With SQLite, that keeps forgelink one process; with PostgreSQL, it keeps two workers from
 * sharing (and sweeping) one data directory's workspaces. The admin commands do not take it.
 */
export async function lockDataDir(dataDir: string, why: string): Promise<ProcessLock> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, LOCK_FILENAME);
  // Private like the rest of the data directory; SQLite gives its journal the same mode.
  await writeFile(file, '', { flag: 'a', mode: 0o600 });
  await chmod(file, 0o600);
  const db = new DatabaseSync(file, { timeout: 0 });
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    throw new ConflictError(
      'data_dir_in_use',
      `Another forgelink process is already running on the data directory ${dataDir} (it holds ${file}). ${why}`,
      { field: 'FORGELINK_DATA_DIR', cause: error },
    );
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      db.close();
    },
  };
}
