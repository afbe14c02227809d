import { randomBytes } from 'node:crypto';
import { link, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `text` to `path` with mode 0600 so that readers see either the old file or the whole new one:
 * temp file in the same directory, fsync, then rename (or link, which refuses to replace an existing file),
 * then fsync of the directory so the new name survives a crash.
 * Returns false when `replace` is false and the file already existed.
 */
export async function writeFileAtomic(path: string, text: string, options: { replace: boolean }): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.chmod(0o600);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.replace) {
      await rename(temp, path);
    } else {
      try {
        await link(temp, path);
      } catch (error) {
        if (isCode(error, 'EEXIST')) return false;
        throw error;
      }
    }
  } finally {
    await rm(temp, { force: true });
  }
  await syncDirectory(dirname(path));
  return true;
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function isCode(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && 'code' in error && codes.includes(String(error.code));
}
