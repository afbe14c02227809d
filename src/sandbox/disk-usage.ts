import { execFile } from 'node:child_process';

const DU = '/usr/bin/du';
const DU_TIMEOUT_MS = 120_000;

/**
 * Bytes of disk the given trees use: du's allocated blocks, so a sparse file counts what it really holds
 * and a file hard-linked twice counts once. Measured rather than enforced by a filesystem because runs
 * live in a directory of the host's filesystem: a size-limited one per run would need root (a loop
 * device or project quotas) on every host, a tmpfs would spend RAM, and RLIMIT_FSIZE bounds single files
 * only. Unreadable parts (an agent's chmod 000 directory, when forgelink is not root) are skipped.
 */
export function diskUsage(dirs: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(
      DU,
      ['--summarize', '--one-file-system', '--block-size=1', '--', ...dirs],
      { env: { PATH: '/usr/bin:/bin' }, timeout: DU_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
      (error, stdout) => {
        const sizes = stdout.split('\n').filter((line) => line !== '').map((line) => Number(line.split('\t')[0]));
        // du exits 1 when it could not read part of a tree: the rest still counts.
        if ((error !== null && sizes.length === 0) || sizes.some((size) => !Number.isSafeInteger(size))) {
          reject(error ?? new Error(`du printed ${JSON.stringify(stdout)}`));
          return;
        }
        resolve(sizes.reduce((sum, size) => sum + size, 0));
      },
    );
  });
}

/**
 * Measures `dirs` again and again while `active()` says so, handing each measurement to `onUsage`. The first
 * measurement comes `minIntervalMs` after the start (a command shorter than that costs no walk at all); after
 * that the pause is ten times the last measurement took (a huge tree is walked less often, so du never takes
 * more than about a tenth of a core), between `minIntervalMs` and 15 s.
 */
export async function watchDiskUsage(options: {
  dirs: readonly string[];
  active: () => boolean;
  minIntervalMs: number;
  onUsage: (bytes: number) => void;
  onError: (error: unknown) => void;
}): Promise<void> {
  let delay = options.minIntervalMs;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, delay).unref());
    if (!options.active()) return;
    const started = performance.now();
    try {
      options.onUsage(await diskUsage(options.dirs));
    } catch (error) {
      options.onError(error);
    }
    delay = Math.min(15_000, Math.max(options.minIntervalMs, (performance.now() - started) * 10));
  }
}
