import { readdir, readFile, readlink } from 'node:fs/promises';

/** Host pids of every process in `/proc`. */
async function allPids(): Promise<number[]> {
  const entries = await readdir('/proc');
  const pids: number[] = [];
  for (const entry of entries) if (/^\d+$/.test(entry)) pids.push(Number(entry));
  return pids;
}

/** `pid:[4026532…]` of a process, or null when it is gone. */
export async function pidNamespaceOf(pid: number): Promise<string | null> {
  try {
    return await readlink(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

/** Host pids of the processes in a pid namespace (a sandbox's whole tree, whoever re-parented). */
export async function processesInPidNamespace(namespace: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await allPids()) {
    if ((await pidNamespaceOf(pid)) === namespace) found.push(pid);
  }
  return found;
}

/** The direct children of a process (all its threads'), from `/proc/<pid>/task/<tid>/children`. */
export async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  try {
    for (const tid of await readdir(`/proc/${pid}/task`)) {
      const text = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
      for (const child of text.trim().split(/\s+/)) if (child !== '') children.push(Number(child));
    }
  } catch {
    return children;
  }
  return children;
}

/**
 * Tasks (threads count: RLIMIT_NPROC counts tasks) whose real uid is `uid`. Used when forgelink is not
 * root and has no cgroup: the kernel then checks RLIMIT_NPROC against all of the uid's tasks on the host.
 */
export async function tasksOfUid(uid: number): Promise<number> {
  let count = 0;
  for (const pid of await allPids()) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const real = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    if (real === undefined || Number(real) !== uid) continue;
    count += Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? '1');
  }
  return count;
}

/** The start time (clock ticks since boot) of a process, or null when it is gone: pid + start time name a process uniquely. */
export async function startTimeOf(pid: number): Promise<string | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Field 22; the command name (field 2) may hold spaces and parentheses, so count from its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}

export function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * The host pids of the command a wrapper (wrapper.ts) runs, `bridge` being the socat binary it starts:
 * bwrap → pid 1 inside → the wrapper → [socat bridge, command]. When the tree is not like that (the
 * command has not started yet, say), every process in the sandbox's pid namespace; the wrapper notes
 * SIGTERM and exits before starting the command.
 */
export async function commandProcesses(bwrapPid: number, bridge: string): Promise<number[]> {
  for (const init of await childrenOf(bwrapPid)) {
    for (const wrapper of await childrenOf(init)) {
      const commands: number[] = [];
      for (const pid of await childrenOf(wrapper)) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
        if (!cmdline.startsWith(`${bridge}\0TCP-LISTEN:`)) commands.push(pid);
      }
      if (commands.length > 0) return commands;
    }
  }
  const own = await pidNamespaceOf(bwrapPid);
  for (const child of await childrenOf(bwrapPid)) {
    const namespace = await pidNamespaceOf(child);
    if (namespace !== null && namespace !== own) return processesInPidNamespace(namespace);
  }
  return [];
}
