import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
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

/** Reads `/proc/<pid>/cmdline` into `buffer` (truncated to its size); empty when the process is gone. */
function readCmdline(pid: string, buffer: Buffer): Buffer {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/cmdline`, 'r');
  } catch {
    return buffer.subarray(0, 0);
  }
  let length = 0;
  try {
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
    }
  } catch {
    // The process exited while being read: what was read is all there is.
  } finally {
    closeSync(fd);
  }
  return buffer.subarray(0, length);
}

/**
 * Watches every process on the host while `during` runs and returns the command lines (`/proc/<pid>/cmdline`)
 * that held `needle`: a secret must never be in any argv. Each pass reads every command line synchronously into
 * one buffer: a few milliseconds of CPU, where reading them with promises cost ten times that and passed less often.
 */
export async function argvHolding<T>(needle: string, during: () => Promise<T>): Promise<{ value: T; leaks: string[] }> {
  let scanning = true;
  const leaks: string[] = [];
  const wanted = Buffer.from(needle, 'latin1');
  const buffer = Buffer.alloc(1 << 20);
  const scan = (async () => {
    while (scanning) {
      let pids: string[] = [];
      try {
        pids = readdirSync('/proc');
      } catch {
        // no /proc this time round: try again
      }
      for (const pid of pids) {
        if (!/^\d+$/.test(pid)) continue;
        const cmdline = readCmdline(pid, buffer);
        if (cmdline.includes(wanted)) leaks.push(cmdline.toString('latin1').replaceAll('\0', ' '));
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
