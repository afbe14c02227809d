import { chmod, lstat, mkdir, readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';

/** One permission change `secureDataDir` made, modes in octal. */
export type ModeChange = { path: string; from: string; to: string };

/** Folders of the data dir whose entries are live runs: only those entries themselves are tightened. */
const RUN_TREES = ['runs', 'sandboxes'];

/**
 * Makes the data directory private to forgelink's user: no group or other permission bits on it or anything
 * in it (0755 becomes 0700, 0644 becomes 0600; the owner's bits stay). It holds the database (password and API-key hashes,
 * run logs), its WAL and SHM files, and the master key. Installs from before this check had 0755/0644; they
 * are corrected here, and the caller logs what changed. Symbolic links are left alone. Inside `runs/<id>` and
 * `sandboxes/<id>` (a run's workspace and sandbox, possibly in use by another process on this data dir) only
 * those directories are changed: their own 0700 keeps everyone else out of what the agent wrote.
 */
export async function secureDataDir(dataDir: string): Promise<{ changed: ModeChange[]; failed: { path: string; error: string }[] }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const changed: ModeChange[] = [];
  const failed: { path: string; error: string }[] = [];

  /** `within`: 'all' walks the whole subtree, 'self' changes this entry only. */
  async function tighten(path: string, info: Stats, within: 'all' | 'entries' | 'self'): Promise<void> {
    const mode = info.mode & 0o7777;
    if ((mode & 0o7077) !== 0) {
      const wanted = mode & 0o700;
      try {
        await chmod(path, wanted);
        changed.push({ path, from: octal(mode), to: octal(wanted) });
      } catch (error) {
        failed.push({ path, error: error instanceof Error ? error.message : String(error) });
      }
    }
    if (!info.isDirectory() || within === 'self') return;
    for (const name of await readdir(path).catch(() => [] as string[])) {
      const entry = join(path, name);
      const entryInfo = await lstat(entry).catch(() => null);
      if (entryInfo === null || entryInfo.isSymbolicLink()) continue;
      const next = within === 'entries' ? 'self' : path === dataDir && RUN_TREES.includes(name) ? 'entries' : 'all';
      await tighten(entry, entryInfo, next);
    }
  }

  // The data dir itself may be a symbolic link the operator made; what it points to is tightened.
  await tighten(dataDir, await stat(dataDir), 'all');
  return { changed, failed };
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}
