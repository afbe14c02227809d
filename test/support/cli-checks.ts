import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import type { Result } from './processes.ts';

/** The CLI exited 0; returns its result. */
export function ok(result: Result): Result {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
  return result;
}

/** The CLI failed as the contract says: non-zero, nothing on stdout, one `forgelink: …` line on stderr. */
export function failsWithOneLine(result: Result, pattern: RegExp): void {
  assert.notEqual(result.code, 0);
  assert.equal(result.stdout, '');
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0] as string, /^forgelink: /);
  assert.match(result.stderr, pattern);
}

/**
 * Watches every process on the host while `during` runs and returns the command lines (`/proc/<pid>/cmdline`)
 * that held `needle`: a secret must never be in any argv.
 */
export async function argvHolding<T>(needle: string, during: () => Promise<T>): Promise<{ value: T; leaks: string[] }> {
  let scanning = true;
  const leaks: string[] = [];
  const scan = (async () => {
    while (scanning) {
      for (const pid of await readdir('/proc').catch(() => [] as string[])) {
        if (!/^\d+$/.test(pid)) continue;
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
        if (cmdline.includes(needle)) leaks.push(cmdline.replaceAll('\0', ' '));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    return { value: await during(), leaks };
  } finally {
    scanning = false;
    await scan;
  }
}
