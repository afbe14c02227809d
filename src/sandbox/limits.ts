import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../core/index.ts';
import { signalAll } from './processes.ts';

/**
 * What a sandbox may consume, and how each limit is enforced:
 * - processes: a pids cgroup per run when forgelink can create one (root, cgroup v1 `pids` or v2 with the
 *   pids controller) — exact, per run, and independent of uids. Without one, RLIMIT_NPROC through
 *   prlimit; the kernel counts that per real uid on the host and never enforces it for root, so it only
 *   holds when forgelink runs as a normal user (it is then set to the uid's current tasks plus the limit).
 * - openFiles: RLIMIT_NOFILE per process.
 * - fileSizeBytes: RLIMIT_FSIZE; a write past it fails and the writer gets SIGXFSZ (exit 153).
 * - /tmp and /dev/shm are tmpfs with a size (driver options); RLIMIT_CORE is 0 so crashes leave no cores.
 * Total disk use in /workspace and the home directory is not capped beyond the per-file limit.
 */
export type ResolvedLimits = { processes: number; openFiles: number; fileSizeBytes: number };

export const DEFAULT_LIMITS: ResolvedLimits = {
  // Threads count as processes for both mechanisms; a Node agent alone has about a dozen.
  processes: 512,
  openFiles: 4096,
  fileSizeBytes: 2 * 1024 ** 3,
};

export function resolveLimits(given: { processes?: number; openFiles?: number; fileSizeBytes?: number } | undefined): ResolvedLimits {
  const limits = { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(given ?? {}).filter(([, value]) => value !== undefined)) };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new InputError('invalid_limit', `limits.${key} must be a positive integer.`, { field: `limits.${key}` });
    }
  }
  return limits;
}

/** prlimit(1) options; `nproc` only when RLIMIT_NPROC is the mechanism in use. */
export function prlimitArgs(limits: ResolvedLimits, nproc: number | null): string[] {
  const args = [`--nofile=${limits.openFiles}`, `--fsize=${limits.fileSizeBytes}`, '--core=0'];
  if (nproc !== null) args.push(`--nproc=${nproc}`);
  return args;
}

/** A per-run pids cgroup: processes are moved in before bwrap starts, so nothing escapes the count. */
export type PidsCgroup = { dir: string; procsFile: string };

/** The pids cgroup hierarchy forgelink can use, or null: where per-run cgroups are made. */
export async function findCgroupBase(setting: 'auto' | 'off' | string): Promise<string | null> {
  if (setting === 'off') return null;
  const candidates = setting === 'auto' ? await autoCandidates() : [setting];
  for (const base of candidates) {
    try {
      await mkdir(base, { recursive: true });
      if (await exists(path.join(base, 'cgroup.subtree_control'))) {
        // cgroup v2: the children of `base` get pids.max only when base delegates the controller.
        const enabled = await readFile(path.join(base, 'cgroup.subtree_control'), 'utf8');
        if (!enabled.split(/\s+/).includes('pids')) await writeFile(path.join(base, 'cgroup.subtree_control'), '+pids');
      }
      const probe = await createPidsCgroup(base, `probe-${process.pid}`, 1);
      await removePidsCgroup(probe);
      return base;
    } catch {
      continue;
    }
  }
  return null;
}

async function autoCandidates(): Promise<string[]> {
  const own = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  const candidates: string[] = [];
  const v1 = /^\d+:pids:(.*)$/m.exec(own)?.[1];
  if (v1 !== undefined && (await exists('/sys/fs/cgroup/pids/cgroup.procs'))) {
    candidates.push(path.join('/sys/fs/cgroup/pids', v1, 'forgelink'));
  }
  if (await exists('/sys/fs/cgroup/cgroup.controllers')) {
    // v2 forbids processes in a cgroup whose children use controllers, so ours goes next to, not under,
    // the cgroup forgelink itself runs in: at the top, where only root can write.
    candidates.push('/sys/fs/cgroup/forgelink');
  }
  return candidates;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

export async function createPidsCgroup(base: string, name: string, maxProcesses: number): Promise<PidsCgroup> {
  const dir = path.join(base, name);
  await mkdir(dir);
  try {
    await writeFile(path.join(dir, 'pids.max'), String(maxProcesses));
  } catch (error) {
    await rmdir(dir).catch(() => {});
    throw error;
  }
  return { dir, procsFile: path.join(dir, 'cgroup.procs') };
}

export async function cgroupProcesses(cgroup: PidsCgroup): Promise<number[]> {
  const text = await readFile(cgroup.procsFile, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line !== '').map(Number);
}

/** Kills whatever is left in the cgroup, then removes it (a cgroup with members cannot be removed). */
export async function removePidsCgroup(cgroup: PidsCgroup): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const left = await cgroupProcesses(cgroup);
    if (left.length > 0) signalAll(left, 'SIGKILL');
    try {
      await rmdir(cgroup.dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  throw new Error(`cgroup ${cgroup.dir} could not be removed`);
}
