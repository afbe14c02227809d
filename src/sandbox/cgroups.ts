import { access, mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { signalAll, startTimeOf } from './processes.ts';

/**
 * Per-run cgroups: a run's processes are moved in before bwrap starts, so every descendant is counted.
 * On cgroup v1 each controller has its own hierarchy (`/sys/fs/cgroup/pids`, `/sys/fs/cgroup/memory`,
 * `/sys/fs/cgroup/cpu`) and a run gets a directory in each; on v2 one directory holds every limit.
 * The `cpu` base holds every run together at a low CPU weight (`setCpuWeight`), so that runs compete with
 * forgelink's own processes as one small share, not as equals (docs/architecture.md, "CPU priority").
 */
export type CgroupController = 'pids' | 'memory' | 'cpu';

/** Where each controller's per-run cgroups are made (the same directory for both on v2), or null. */
export type CgroupBases = Record<CgroupController, string | null>;

export type RunCgroups = {
  dirs: string[];
  /** Every `cgroup.procs` a run's first process writes itself into. */
  procsFiles: string[];
  /** The file whose `oom_kill N` line counts the run's OOM kills (v2 `memory.events`, v1 `memory.oom_control`); null without a memory cgroup. */
  oomEvents: string | null;
  /** Whether the run has a cpu cgroup carrying its CPU cap. */
  cpuCapped: boolean;
};

/** `cpuMillicores`: the run's CPU cap in thousandths of a CPU (1500 = one and a half), null for none. */
export type CgroupLimits = { processes: number; memoryBytes: number; cpuMillicores: number | null };

/** The scheduler's period a CPU cap is measured over (the kernel's default, 100 ms). */
const CPU_PERIOD_US = 100_000;

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** The base for one controller: 'auto' finds one, 'off' none, or the given directory. */
export async function findCgroupBase(controller: CgroupController, setting: 'auto' | 'off' | string): Promise<string | null> {
  if (setting === 'off') return null;
  const candidates = setting === 'auto' ? await autoCandidates(controller) : [setting];
  for (const base of candidates) {
    try {
      await mkdir(base, { recursive: true });
      if (await exists(path.join(base, 'cgroup.subtree_control'))) {
        // cgroup v2: the children of `base` get the controller's files only when base delegates it.
        const enabled = await readFile(path.join(base, 'cgroup.subtree_control'), 'utf8');
        if (!enabled.split(/\s+/).includes(controller)) await writeFile(path.join(base, 'cgroup.subtree_control'), `+${controller}`);
      }
      const probe = `probe-${process.pid}`;
      const bases: CgroupBases = { pids: null, memory: null, cpu: null, [controller]: base };
      await removeRunCgroups(await createRunCgroups(bases, probe, { processes: 1, memoryBytes: 64 * 1024 ** 2, cpuMillicores: 100 }));
      return base;
    } catch {
      continue;
    }
  }
  return null;
}

async function autoCandidates(controller: CgroupController): Promise<string[]> {
  const own = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  const candidates: string[] = [];
  const v1 = new RegExp(`^\\d+:([^:]*,)?${controller}(,[^:]*)?:(.*)$`, 'm').exec(own)?.[3];
  if (v1 !== undefined && (await exists(`/sys/fs/cgroup/${controller}/cgroup.procs`))) {
    // v1 has no rule against processes in inner cgroups: ours go under the one forgelink runs in.
    candidates.push(path.join('/sys/fs/cgroup', controller, v1, 'forgelink'));
  }
  if (await exists('/sys/fs/cgroup/cgroup.controllers')) {
    // v2 forbids processes in a cgroup whose children use controllers, so ours goes next to, not under,
    // the cgroup forgelink itself runs in: at the top, where only root can write.
    candidates.push('/sys/fs/cgroup/forgelink');
  }
  return candidates;
}

/**
 * The weight of every run together against the cgroup's siblings — on v2 the cgroups next to it, where forgelink's
 * own runs; on v1 also the tasks of the cgroup forgelink runs in. `weight` is on v2's scale (1–10000, default 100);
 * v1's `cpu.shares` is 1024 for 100, as systemd converts it. Returns the file written and the value.
 */
export async function setCpuWeight(base: string, weight: number): Promise<{ file: string; value: number }> {
  if (await exists(path.join(base, 'cpu.weight'))) {
    await writeFile(path.join(base, 'cpu.weight'), String(weight));
    return { file: path.join(base, 'cpu.weight'), value: weight };
  }
  const shares = Math.max(2, Math.round((weight * 1024) / 100));
  await writeFile(path.join(base, 'cpu.shares'), String(shares));
  return { file: path.join(base, 'cpu.shares'), value: shares };
}

/** The limit files of a controller in `dir`: v2 and v1 name memory's and cpu's differently, and swap is capped with memory where it is accounted. */
async function writeLimits(dir: string, controllers: readonly CgroupController[], limits: CgroupLimits): Promise<void> {
  if (controllers.includes('pids')) await writeFile(path.join(dir, 'pids.max'), String(limits.processes));
  if (controllers.includes('cpu') && limits.cpuMillicores !== null) {
    const quota = String(Math.max(1000, Math.round((limits.cpuMillicores * CPU_PERIOD_US) / 1000)));
    if (await exists(path.join(dir, 'cpu.max'))) await writeFile(path.join(dir, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
    else {
      await writeFile(path.join(dir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      await writeFile(path.join(dir, 'cpu.cfs_quota_us'), quota);
    }
  }
  if (!controllers.includes('memory')) return;
  const bytes = String(limits.memoryBytes);
  if (await exists(path.join(dir, 'memory.max'))) {
    await writeFile(path.join(dir, 'memory.max'), bytes);
    if (await exists(path.join(dir, 'memory.swap.max'))) await writeFile(path.join(dir, 'memory.swap.max'), '0');
  } else {
    await writeFile(path.join(dir, 'memory.limit_in_bytes'), bytes);
    // memory + swap together may not exceed the cap either (it must be set after, and be at least, the memory limit).
    if (await exists(path.join(dir, 'memory.memsw.limit_in_bytes'))) await writeFile(path.join(dir, 'memory.memsw.limit_in_bytes'), bytes);
  }
}

export async function createRunCgroups(bases: CgroupBases, name: string, limits: CgroupLimits): Promise<RunCgroups> {
  const byBase = new Map<string, CgroupController[]>();
  for (const controller of ['pids', 'memory', 'cpu'] as const) {
    const base = bases[controller];
    if (base !== null) byBase.set(base, [...(byBase.get(base) ?? []), controller]);
  }
  const made: RunCgroups = { dirs: [], procsFiles: [], oomEvents: null, cpuCapped: false };
  try {
    for (const [base, controllers] of byBase) {
      const dir = path.join(base, name);
      await mkdir(dir);
      made.dirs.push(dir);
      made.procsFiles.push(path.join(dir, 'cgroup.procs'));
      await writeLimits(dir, controllers, limits);
      if (controllers.includes('cpu')) made.cpuCapped = limits.cpuMillicores !== null;
      if (controllers.includes('memory')) {
        made.oomEvents = path.join(dir, (await exists(path.join(dir, 'memory.events'))) ? 'memory.events' : 'memory.oom_control');
      }
    }
  } catch (error) {
    await removeRunCgroups(made).catch(() => {});
    throw error;
  }
  return made;
}

/** How many processes of the run the kernel has killed for memory so far. */
export async function oomKills(cgroups: RunCgroups): Promise<number> {
  if (cgroups.oomEvents === null) return 0;
  const text = await readFile(cgroups.oomEvents, 'utf8').catch(() => '');
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
}

async function cgroupProcesses(procsFile: string): Promise<number[]> {
  const text = await readFile(procsFile, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line !== '').map(Number);
}

/** Kills whatever is left in the run's cgroups, then removes them (a cgroup with members cannot be removed). */
export async function removeRunCgroups(cgroups: Pick<RunCgroups, 'dirs'>): Promise<void> {
  for (const dir of cgroups.dirs) await removeCgroup(dir);
}

async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const left = await cgroupProcesses(path.join(dir, 'cgroup.procs'));
    if (left.length > 0) signalAll(left, 'SIGKILL');
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  throw new Error(`cgroup ${dir} could not be removed`);
}

/** Removes cgroups of forgelink processes that are gone (named `<pid>-<runId>`); live ones stay. */
export async function sweepCgroups(bases: CgroupBases): Promise<void> {
  for (const base of new Set([bases.pids, bases.memory, bases.cpu])) {
    if (base === null) continue;
    for (const name of await readdir(base).catch(() => [])) {
      const pid = /^(\d+)-/.exec(name)?.[1];
      if (pid === undefined || Number(pid) === process.pid || (await startTimeOf(Number(pid))) !== null) continue;
      await removeRunCgroups({ dirs: [path.join(base, name)] }).catch(() => {});
    }
  }
}
