import { InputError } from '../core/index.ts';

/**
 * What a sandbox may consume, and how each limit is enforced:
 * - processes: a pids cgroup per run when forgelink can create one (root, cgroup v1 `pids` or v2 with the
 *   pids controller) — exact, per run, and independent of uids. Without one, RLIMIT_NPROC through
 *   the shell's ulimit; the kernel counts that per real uid on the host and never enforces it for root, so it only
 *   holds when forgelink runs as a normal user (it is then set to the uid's current tasks plus the limit).
 * - memoryBytes: a memory cgroup per run (v2 `memory.max` with no swap, v1 `memory.limit_in_bytes` and
 *   `memory.memsw.limit_in_bytes`): every process of the run together, page cache and the /tmp and
 *   /dev/shm tmpfs included; past it the kernel OOM-kills a process of the run. Without a memory cgroup,
 *   RLIMIT_AS per process (address space, not memory: the cap then holds per process only, and the run's
 *   log says so).
 * - diskBytes: blocks used in the workspace and the home directory together, measured with du while a
 *   command runs (disk-usage.ts); a command that grows them past the cap is killed.
 * - openFiles: RLIMIT_NOFILE per process.
 * - fileSizeBytes: RLIMIT_FSIZE; a write past it fails and the writer gets SIGXFSZ (exit 153).
 * - cpuMillicores: the run's CPU time per 100 ms period in a cpu cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us`),
 *   in thousandths of a CPU; null (the default) for no cap. Without a cpu cgroup it is not enforced.
 * - /tmp and /dev/shm are tmpfs with a size (driver options); RLIMIT_CORE is 0 so crashes leave no cores.
 */
export type ResolvedLimits = {
  processes: number;
  openFiles: number;
  fileSizeBytes: number;
  memoryBytes: number;
  diskBytes: number;
  cpuMillicores: number | null;
};

export const DEFAULT_LIMITS: ResolvedLimits = {
  // Threads count as processes for both mechanisms; a Node agent alone has about a dozen.
  processes: 512,
  openFiles: 4096,
  fileSizeBytes: 2 * 1024 ** 3,
  memoryBytes: 4 * 1024 ** 3,
  diskBytes: 10 * 1024 ** 3,
  cpuMillicores: null,
};

export function resolveLimits(given: Partial<ResolvedLimits> | undefined): ResolvedLimits {
  const limits = { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(given ?? {}).filter(([, value]) => value !== undefined)) };
  for (const [key, value] of Object.entries(limits)) {
    if (key === 'cpuMillicores' && value === null) continue;
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new InputError('invalid_limit', `limits.${key} must be a positive integer.`, { field: `limits.${key}` });
    }
  }
  return limits;
}

/**
 * The limits as the arguments of dash's `ulimit` builtin, flag and value in pairs (each sets the soft and the hard
 * limit); `nproc` only when RLIMIT_NPROC is the mechanism in use, `addressSpace` only when RLIMIT_AS stands in for a
 * memory cgroup. The file size goes in whole 512-byte blocks and the address space in whole KiB, rounded down.
 */
export function ulimitArgs(limits: ResolvedLimits, nproc: number | null, addressSpace: number | null): string[] {
  const args = ['-n', String(limits.openFiles), '-f', String(Math.max(1, Math.floor(limits.fileSizeBytes / 512))), '-c', '0'];
  if (nproc !== null) args.push('-p', String(nproc));
  if (addressSpace !== null) args.push('-v', String(Math.max(1, Math.floor(addressSpace / 1024))));
  return args;
}
