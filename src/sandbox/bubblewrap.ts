import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, lstat, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { getPriority, setPriority } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import {
  ForgelinkError,
  formatBytes,
  InputError,
  type SandboxDriver,
  type SandboxExec,
  type SandboxExit,
  type SandboxOptions,
  type SandboxSession,
} from '../core/index.ts';
import { parseAllowlist } from '../core/allowlist.ts';
import { bwrapOptions, encodeArgs, type HostLayout } from './bwrap-args.ts';
import { createEgressProxy } from './egress-proxy.ts';
import { detectHostLayout } from './host-layout.ts';
import { createRunCgroups, findCgroupBase, oomKills, removeRunCgroups, setCpuWeight, sweepCgroups, type CgroupBases, type RunCgroups } from './cgroups.ts';
import { diskUsage, watchDiskUsage } from './disk-usage.ts';
import { ulimitArgs, resolveLimits, type ResolvedLimits } from './limits.ts';
import { silentLogger, type SandboxLogger } from './logger.ts';
import { compileSeccomp, seccompRules } from './seccomp.ts';
import { commandProcesses, signalAll, tasksOfUid } from './processes.ts';
import { checkFilePath, checkRunId, createRunDir, GENERATED_ETC, removeTree, staleRunDirs, type RunDir } from './run-dir.ts';
import { SANDBOX_PATHS, sandboxEnv, wrapperScript } from './wrapper.ts';

export type BubblewrapDriverOptions = {
  /** Where per-run directories (proxy socket, home, generated files) live; created with mode 0700. */
  stateDir: string;
  /** The agent's uid and gid inside the sandbox (default 1000): never root there. */
  uid?: number;
  gid?: number;
  /** Host paths bound read-only at the same path (an agent installed under /opt, say). */
  extraReadOnlyPaths?: readonly string[];
  /** The Node binary bound at /opt/forgelink/bin/node; default the one running forgelink; null for none. */
  nodePath?: string | null;
  /** Size of each command's /tmp tmpfs (default 512 MiB) and /dev/shm (default 64 MiB). */
  tmpSizeBytes?: number;
  shmSizeBytes?: number;
  /** pids cgroup base: 'auto' (default) finds one, 'off' uses RLIMIT_NPROC only, or a directory. */
  cgroup?: 'auto' | 'off' | string;
  /** memory cgroup base: 'auto' (default) finds one, 'off' uses RLIMIT_AS per process only, or a directory. */
  memoryCgroup?: 'auto' | 'off' | string;
  /** cpu cgroup base: 'auto' (default) finds one, 'off' leaves CPU priority to `nice` alone and CPU caps unenforced, or a directory. */
  cpuCgroup?: 'auto' | 'off' | string;
  /**
   * The CPU weight of all runs together, on cgroup v2's scale where forgelink's own processes have 100 (default 20;
   * FORGELINK_RUN_CPU_WEIGHT). Written on the cpu cgroup base; null leaves the base's weight as it is.
   */
  cpuWeight?: number | null;
  /** The nice value every sandboxed process starts with (default 10; 0 for none): the fallback without a cpu cgroup, and added to it. */
  nice?: number;
  /** The shortest time between two measurements of a session's disk use while a command runs (default 1 s). */
  diskCheckIntervalMs?: number;
  /** After SIGTERM on timeout or cancel, how long before SIGKILL (default 2 s). */
  killGraceMs?: number;
  hostname?: string;
  bwrapPath?: string;
  logger?: SandboxLogger;
};

/** What the driver learns about the host once. */
type HostFacts = {
  layout: HostLayout;
  cgroups: CgroupBases;
  /** The file holding the runs' CPU weight and its value, or null when there is no cpu cgroup. */
  cpuWeight: { file: string; value: number } | null;
  nodePath: string | null;
  hostUid: number;
  seccomp: Buffer;
};

/** The host-side helpers run with this environment only; the agent's arrives inside via `--setenv`. */
const HOST_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
const SOCAT = '/usr/bin/socat';
/**
 * A shell that puts itself into the run's cgroups (the files up to the first `--`, so every descendant is counted),
 * sets its limits with `ulimit` (the flag and value pairs up to the second `--`) and then becomes bwrap: one process
 * before bwrap, where separate prlimit and nice processes would each cost an exec. Exit 125 when a cgroup cannot be
 * joined or a limit set. dash, named as such: its `ulimit -p` is the process limit (bash's is the pipe size).
 */
const CHAIN_SHELL = '/bin/dash';
const START_CHAIN =
  'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; ' +
  'while [ "$1" != -- ]; do ulimit "$1" "$2" || exit 125; shift 2; done; shift; exec "$@"';
const UNIX_SOCKET_PATH_MAX = 107;
/** bwrap's descriptors: 3 carries its options (`--args`), 4 the seccomp filter (`--seccomp`). */
const ARGS_FD = 3;
const SECCOMP_FD = 4;

/** The driver's options with their defaults applied. */
type Driver = {
  options: BubblewrapDriverOptions;
  logger: SandboxLogger;
  uid: number;
  gid: number;
  bwrapPath: string;
  nice: number;
  cpuWeight: number | null;
  stateDir: string;
};

/** Sandboxes on bubblewrap, one egress proxy per session (see bwrap-args.ts for what a sandbox holds). */
export function createBubblewrapDriver(options: BubblewrapDriverOptions): SandboxDriver {
  const driver = resolveDriver(options);
  let facts: Promise<HostFacts> | null = null;
  return {
    async create(sandbox: SandboxOptions): Promise<SandboxSession> {
      if (facts === null) {
        facts = learnHost(driver);
        // A failed look (bwrap missing, say) is retried by the next create rather than remembered.
        facts.catch(() => {
          facts = null;
        });
      }
      return createSandbox(driver, await facts, sandbox);
    },
  };
}

function resolveDriver(options: BubblewrapDriverOptions): Driver {
  const driver: Driver = {
    options,
    logger: options.logger ?? silentLogger,
    uid: options.uid ?? 1000,
    gid: options.gid ?? 1000,
    bwrapPath: options.bwrapPath ?? '/usr/bin/bwrap',
    nice: options.nice ?? 10,
    cpuWeight: options.cpuWeight === undefined ? 20 : options.cpuWeight,
    stateDir: path.resolve(options.stateDir),
  };
  if (!Number.isSafeInteger(driver.nice) || driver.nice < 0 || driver.nice > 19) {
    throw new InputError('invalid_sandbox_nice', 'nice must be between 0 and 19: a sandbox never runs at a higher priority than forgelink.', { field: 'nice' });
  }
  if (driver.cpuWeight !== null && (!Number.isSafeInteger(driver.cpuWeight) || driver.cpuWeight < 1 || driver.cpuWeight > 10000)) {
    throw new InputError('invalid_cpu_weight', 'cpuWeight must be between 1 and 10000.', { field: 'cpuWeight' });
  }
  for (const [name, value] of [['uid', driver.uid], ['gid', driver.gid]] as const) {
    if (!Number.isSafeInteger(value) || value < 1 || value > 65534) {
      throw new InputError('invalid_sandbox_id', `${name} must be between 1 and 65534: the agent is never root.`, { field: name });
    }
  }
  return driver;
}

/** Once per driver: the host has the tools and paths it needs; its layout, cgroups and seccomp filter. */
async function learnHost(driver: Driver): Promise<HostFacts> {
  const { options, logger } = driver;
  await checkHostTools(driver);
  await checkExtraPaths(options.extraReadOnlyPaths ?? []);
  await mkdir(driver.stateDir, { recursive: true, mode: 0o700 });
  const nodePath = options.nodePath === undefined ? process.execPath : options.nodePath;
  const cgroups: CgroupBases = {
    pids: await findCgroupBase('pids', options.cgroup ?? 'auto'),
    memory: await findCgroupBase('memory', options.memoryCgroup ?? 'auto'),
    cpu: await findCgroupBase('cpu', options.cpuCgroup ?? 'auto'),
  };
  let cpuWeight: HostFacts['cpuWeight'] = null;
  if (cgroups.cpu !== null && driver.cpuWeight !== null) {
    try {
      cpuWeight = await setCpuWeight(cgroups.cpu, driver.cpuWeight);
    } catch (error) {
      logger.warn({ err: String(error) }, 'sandbox: the runs\' CPU weight could not be set; they run at nice only');
    }
  } else if (cgroups.cpu === null) {
    logger.warn({}, 'sandbox: no cpu cgroup available, so runs get a lower CPU priority through nice only and CPU caps are not enforced');
  }
  const hostUid = process.getuid?.() ?? 0;
  if (cgroups.pids === null && hostUid === 0) {
    logger.warn({}, 'sandbox: no pids cgroup available and forgelink runs as root, so the process limit is not enforced');
  }
  if (cgroups.memory === null) {
    logger.warn({}, 'sandbox: no memory cgroup available, so the memory cap holds per process (RLIMIT_AS), not per run');
  }
  await sweepCgroups(cgroups);
  const seccomp = await compileSeccomp(seccompRules());
  if (seccomp.unknown.length > 0) {
    logger.debug({ syscalls: seccomp.unknown }, 'sandbox: syscalls this libseccomp does not know are left out of the seccomp filter');
  }
  return { layout: await detectHostLayout(), cgroups, cpuWeight, nodePath, hostUid, seccomp: seccomp.bpf };
}

async function checkHostTools(driver: Driver): Promise<void> {
  const missing: string[] = [];
  for (const [file, pkg] of [[driver.bwrapPath, 'bubblewrap'], [SOCAT, 'socat'], [CHAIN_SHELL, 'dash'], ['/usr/bin/du', 'coreutils']] as const) {
    await access(file, constants.X_OK).catch(() => missing.push(`${file} (Debian package ${pkg})`));
  }
  if (missing.length > 0) {
    throw new ForgelinkError('sandbox_unavailable', `Sandboxed runs need ${missing.join(', ')}; install them (apt-get install bubblewrap socat).`);
  }
}

async function checkExtraPaths(extraReadOnlyPaths: readonly string[]): Promise<void> {
  for (const extra of extraReadOnlyPaths) {
    const reserved = ['/', '/proc', '/dev', '/tmp', SANDBOX_PATHS.workspace, SANDBOX_PATHS.home, SANDBOX_PATHS.runtime];
    if (!path.isAbsolute(extra) || path.normalize(extra) !== extra || reserved.includes(extra)) {
      throw new InputError('invalid_sandbox_path', `extraReadOnlyPaths: "${extra}" must be an absolute, normalised path other than ${reserved.join(', ')}.`);
    }
    await access(extra).catch(() => {
      throw new InputError('invalid_sandbox_path', `extraReadOnlyPaths: "${extra}" does not exist.`);
    });
  }
}

/** One run's sandbox: its options checked, leftovers of dead processes removed, its directory, cgroups and proxy made. */
async function createSandbox(driver: Driver, host: HostFacts, sandbox: SandboxOptions): Promise<SandboxSession> {
  const { logger, stateDir } = driver;
  const { entries, limits } = await checkSandbox(sandbox);
  for (const name of await staleRunDirs(stateDir)) {
    logger.info({ runId: name }, 'sandbox: removing the leftovers of a sandbox whose forgelink process is gone');
    await removeTree(path.join(stateDir, name));
  }
  await sweepCgroups(host.cgroups);

  const hostname = driver.options.hostname ?? 'forgelink-sandbox';
  const runDir = await createRunDir(stateDir, sandbox.runId, { uid: driver.uid, gid: driver.gid, hostname, wrapper: wrapperScript(), files: sandbox.files ?? {} });
  let cgroups: RunCgroups | null = null;
  const proxy = createEgressProxy({
    socketPath: runDir.proxySocket,
    allowlist: entries,
    outboundPolicy: sandbox.outboundPolicy,
    logger,
    ...(sandbox.internalToken ? { internalToken: sandbox.internalToken } : {}),
    ...(sandbox.broker ? { broker: sandbox.broker } : {}),
  });
  try {
    if (Buffer.byteLength(runDir.proxySocket) > UNIX_SOCKET_PATH_MAX) {
      throw new ForgelinkError('sandbox_path_too_long', `The sandbox state dir ${stateDir} is too deep for a unix socket path; choose a shorter one.`);
    }
    cgroups = await createRunCgroups(host.cgroups, `${process.pid}-${sandbox.runId}`, limits);
    await proxy.listen();
  } catch (error) {
    await proxy.close().catch(() => {});
    if (cgroups !== null) await removeRunCgroups(cgroups).catch(() => {});
    await removeTree(runDir.root);
    throw error;
  }
  return createSession({
    driver,
    sandbox,
    host,
    runDir,
    cgroups,
    limits,
    proxy,
    hostname,
    memoryCgroup: cgroups.oomEvents !== null,
    diskDirs: [sandbox.workspaceDir, runDir.homeDir],
    running: new Set(),
    destroying: null,
    lastDiskUsage: 0,
    watchingDisk: false,
  });
}

async function checkSandbox(sandbox: SandboxOptions): Promise<{ entries: ReturnType<typeof parseAllowlist>['entries']; limits: ResolvedLimits }> {
  checkRunId(sandbox.runId);
  const limits = resolveLimits(sandbox.limits);
  const { entries, errors } = parseAllowlist(sandbox.allowlist);
  if (errors.length > 0) throw new InputError('invalid_allowlist', `allowlist: ${errors.join('; ')}.`, { field: 'allowlist' });
  for (const dest of Object.keys(sandbox.files ?? {})) checkFilePath(dest);
  for (const mount of sandbox.mounts ?? []) {
    const reserved = ['/', '/proc', '/dev', '/tmp', '/usr', '/etc', SANDBOX_PATHS.workspace, SANDBOX_PATHS.home, SANDBOX_PATHS.runtime];
    const inside = mount.dest;
    if (!path.posix.isAbsolute(inside) || path.posix.normalize(inside) !== inside || reserved.some((r) => inside === r || (r !== '/' && inside.startsWith(`${r}/`)))) {
      throw new InputError('invalid_sandbox_path', `mounts: "${inside}" must be an absolute, normalised path outside ${reserved.join(', ')}.`, { field: 'mounts' });
    }
    if (!path.isAbsolute(mount.source) || !(await stat(mount.source).catch(() => null))?.isDirectory()) {
      throw new InputError('invalid_sandbox_path', `mounts: "${mount.source}" must be an existing directory, by absolute path.`, { field: 'mounts' });
    }
  }
  if (sandbox.rootfs !== undefined) await checkImageRoot(sandbox.rootfs, Object.keys(sandbox.files ?? {}));
  if (!path.isAbsolute(sandbox.workspaceDir) || !(await stat(sandbox.workspaceDir).catch(() => null))?.isDirectory()) {
    throw new InputError('invalid_workspace', `workspaceDir "${sandbox.workspaceDir}" must be an existing directory, by absolute path.`, {
      field: 'workspaceDir',
    });
  }
  return { entries, limits };
}

/**
 * An image root is read-only, so every mount point must exist in it: the image cache made the sandbox's own
 * (images/prepare.ts); a file outside /etc/forgelink needs a regular file at its path in the image.
 */
async function checkImageRoot(rootfs: string, files: readonly string[]): Promise<void> {
  if (!path.isAbsolute(rootfs) || !(await stat(rootfs).catch(() => null))?.isDirectory()) {
    throw new InputError('invalid_rootfs', `rootfs "${rootfs}" must be an existing directory, by absolute path.`, { field: 'rootfs' });
  }
  for (const dest of files) {
    if (path.posix.dirname(dest) === SANDBOX_PATHS.generatedFiles) continue;
    const info = await lstat(path.join(rootfs, dest)).catch(() => null);
    if (info === null || !info.isFile()) {
      throw new InputError('invalid_sandbox_file', `files: "${dest}" has no file to be mounted over in the run image; place run files under ${SANDBOX_PATHS.generatedFiles}.`, {
        field: 'files',
      });
    }
  }
}

/** A session's parts, and what it tracks while commands run. */
type SessionState = {
  driver: Driver;
  sandbox: SandboxOptions;
  host: HostFacts;
  runDir: RunDir;
  cgroups: RunCgroups;
  limits: ResolvedLimits;
  proxy: ReturnType<typeof createEgressProxy>;
  hostname: string;
  /** Whether the run has a memory cgroup (otherwise memory is capped per process). */
  memoryCgroup: boolean;
  /** What the disk cap covers: the workspace and home. */
  diskDirs: string[];
  running: Set<Execution>;
  destroying: Promise<void> | null;
  /** The disk use measured last. */
  lastDiskUsage: number;
  watchingDisk: boolean;
};

function createSession(session: SessionState): SandboxSession {
  return {
    exec: (request) => exec(session, request),
    egress: () => session.proxy.record(),
    destroy: () => destroy(session),
    notices: sessionNotices(session),
  };
}

function sessionNotices({ limits, memoryCgroup, host, driver, cgroups }: SessionState): string[] {
  const cpuCap = limits.cpuMillicores === null ? '' : `, CPU ${limits.cpuMillicores / 1000} ${limits.cpuMillicores === 1000 ? 'core' : 'cores'}`;
  const notices = [
    `Limits: memory ${formatBytes(limits.memoryBytes)}${memoryCgroup ? '' : ' per process'}, disk ${formatBytes(limits.diskBytes)} (workspace and home), ${limits.processes} processes${cpuCap}`,
    `CPU priority: below forgelink's own processes (${[host.cpuWeight ? `runs' cgroup weight ${driver.cpuWeight} against forgelink's 100` : null, driver.nice > 0 ? `nice ${driver.nice}` : null].filter((part) => part !== null).join(', ') || 'not lowered'})`,
  ];
  if (limits.cpuMillicores !== null && !cgroups.cpuCapped) {
    notices.push('No cpu cgroup could be made on this host: the CPU cap (FORGELINK_RUN_CPU_MAX) is not enforced; the run only has a lower priority.');
  }
  if (!memoryCgroup) {
    notices.push(
      `No memory cgroup could be made on this host: the memory cap is enforced per process as ${formatBytes(limits.memoryBytes)} of address space (RLIMIT_AS), so a process past it sees its allocations fail and the run as a whole is not capped.`,
    );
  }
  return notices;
}

/** While commands run: measures the workspace and home, and kills each command that grew them past the cap. */
async function watchDisk(session: SessionState): Promise<void> {
  if (session.watchingDisk) return;
  session.watchingDisk = true;
  await watchDiskUsage({
    dirs: session.diskDirs,
    active: () => {
      // Cleared in the same turn as the answer, so a command starting right after starts a watcher of its own.
      const on = session.running.size > 0 && session.destroying === null;
      if (!on) session.watchingDisk = false;
      return on;
    },
    minIntervalMs: session.driver.options.diskCheckIntervalMs ?? 1000,
    onUsage: (usage) => {
      session.lastDiskUsage = usage;
      // A command that started over the cap (collecting after a disk stop) is stopped only if it grows them further.
      for (const execution of session.running) if (usage > Math.max(session.limits.diskBytes, execution.diskBaseline)) execution.stopForDisk();
    },
    onError: (error) => session.driver.logger.warn({ runId: session.sandbox.runId, err: String(error) }, 'sandbox: measuring disk use failed'),
  });
}

async function exec(session: SessionState, request: SandboxExec): Promise<SandboxExit> {
  const { sandbox, host, cgroups, limits } = session;
  if (session.destroying !== null) throw new ForgelinkError('sandbox_destroyed', `The sandbox of run ${sandbox.runId} was destroyed.`);
  checkExec(request);
  for (const dest of request.writable ?? []) {
    if (!(sandbox.mounts ?? []).some((mount) => mount.dest === dest)) {
      throw new InputError('invalid_writable', `writable: "${dest}" is not one of the sandbox's mounts.`, { field: 'writable' });
    }
  }
  if (request.signal?.aborted) return { exitCode: null, signal: null, timedOut: false, canceled: true };
  const { argv, payload } = await commandLine(session, request);
  if (session.destroying !== null) throw new ForgelinkError('sandbox_destroyed', `The sandbox of run ${sandbox.runId} was destroyed.`);
  const oomBefore = await oomKills(cgroups);
  // Over the cap already (a command was stopped for it): measure afresh, as the stopped command may have written more before it died.
  if (session.lastDiskUsage > limits.diskBytes) session.lastDiskUsage = await diskUsage(session.diskDirs).catch(() => session.lastDiskUsage);
  const execution = start(session, argv, [payload, host.seccomp], request);
  session.running.add(execution);
  void watchDisk(session);
  try {
    const exit = await execution.done;
    if (execution.stoppedForDisk) return { ...exit, limit: 'disk' };
    // A process killed for memory: the command failed because of it when it did not succeed.
    if (exit.exitCode !== 0 && !exit.timedOut && !exit.canceled && (await oomKills(cgroups)) > oomBefore) return { ...exit, limit: 'memory' };
    return exit;
  } finally {
    session.running.delete(execution);
  }
}

/** The chain a command runs through — `dash -c 'join cgroups; ulimit …' … -- bwrap --args 3 -- /bin/sh wrapper.sh <command…>` — and bwrap's options. */
async function commandLine(session: SessionState, request: SandboxExec): Promise<{ argv: [string, ...string[]]; payload: Buffer }> {
  const { driver, sandbox, host, runDir, cgroups, limits } = session;
  const { options } = driver;
  const cwd = request.cwd ?? SANDBOX_PATHS.workspace;
  const plan = bwrapOptions({
    uid: driver.uid,
    gid: driver.gid,
    hostname: session.hostname,
    layout: host.layout,
    imageRoot: sandbox.rootfs ?? null,
    generatedEtcDir: runDir.etcDir,
    generatedEtc: GENERATED_ETC,
    runtimeDir: runDir.runtimeDir,
    homeDir: runDir.homeDir,
    workspaceDir: sandbox.workspaceDir,
    cwd,
    tmpSizeBytes: options.tmpSizeBytes ?? 512 * 1024 ** 2,
    shmSizeBytes: options.shmSizeBytes ?? 64 * 1024 ** 2,
    files: runDir.files,
    // The operator's mounts and forgelink's Node are host binaries for the host layout; an image brings its own.
    extraReadOnlyPaths: sandbox.rootfs === undefined ? (options.extraReadOnlyPaths ?? []) : [],
    mounts: (sandbox.mounts ?? []).map((mount) => ({ ...mount, writable: request.writable?.includes(mount.dest) ?? false })),
    nodePath: sandbox.rootfs === undefined ? host.nodePath : null,
    env: sandboxEnv(request.env, cwd),
    seccompFd: SECCOMP_FD,
  });
  const payload = encodeArgs(plan);
  // RLIMIT_NPROC counts every task of the host uid and is ignored for root (see limits.ts).
  const nproc = host.cgroups.pids !== null || host.hostUid === 0 ? null : limits.processes + (await tasksOfUid(host.hostUid));
  const argv = [
    CHAIN_SHELL, '-c', START_CHAIN, 'forgelink-sandbox', ...cgroups.procsFiles, '--',
    ...ulimitArgs(limits, nproc, session.memoryCgroup ? null : limits.memoryBytes),
    '--',
    driver.bwrapPath,
    '--args',
    String(ARGS_FD),
    '--',
    // Offline, the command runs without the wrapper, so without the bridge to the proxy: nothing in the sandbox listens.
    ...(request.offline === true ? [] : ['/bin/sh', SANDBOX_PATHS.wrapper]),
    ...request.command,
  ];
  return { argv: argv as [string, ...string[]], payload };
}

/**
 * Spawns bwrap's chain with `inputs` written to descriptors 3, 4, … (bwrap reads each to its end); output goes to
 * `onOutput`. The chain gets its lower CPU priority before any input is written: bwrap reads its options before it
 * starts anything, so every process of the command inherits it, and an unprivileged process cannot raise it again
 * (docs/architecture.md, "CPU priority").
 */
function spawnChain(argv: [string, ...string[]], inputs: readonly Buffer[], request: SandboxExec, nice: number): ChildProcess {
  const child = spawn(argv[0], argv.slice(1), {
    cwd: '/',
    env: HOST_ENV,
    stdio: [request.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', ...inputs.map(() => 'pipe' as const)],
    detached: true,
  });
  if (nice > 0 && child.pid !== undefined) {
    try {
      // Added to forgelink's own, as nice(1) adds it.
      setPriority(child.pid, Math.min(19, getPriority() + nice));
    } catch {
      // Gone already (it failed to start, reported as its error), or not allowed: as nice(1), the command runs regardless.
    }
  }
  if (request.input !== undefined && child.stdin !== null) {
    // A command that ends without reading all of it closes the pipe: that is its business, not an error here.
    child.stdin.on('error', () => {});
    request.input.pipe(child.stdin);
  }
  for (const [index, input] of inputs.entries()) {
    const pipe = child.stdio[ARGS_FD + index] as Writable;
    pipe.on('error', () => {});
    pipe.end(input);
  }
  for (const [stream, name] of [[child.stdout, 'stdout'], [child.stderr, 'stderr']] as const) {
    (stream as Readable).setEncoding('utf8');
    (stream as Readable).on('data', (chunk: string) => request.onOutput?.(chunk, name));
  }
  return child;
}

/** Starts a command: its end, stopping it on timeout or cancel, and killing it. */
function start(session: SessionState, argv: [string, ...string[]], inputs: readonly Buffer[], request: SandboxExec): Execution {
  const { logger, options } = session.driver;
  const child = spawnChain(argv, inputs, request, session.driver.nice);
  let timedOut = false;
  let canceled = false;
  let exited = false;
  let stopping: Promise<void> | null = null;

  function killGroup(): void {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }

  /**
   * SIGTERM to the command, as `docker stop` does to a container's main process; it ends its own
   * children or not, and after the grace period SIGKILL to bwrap takes the whole pid namespace down
   * (bwrap's death SIGKILLs its child, pid 1 inside, whose death kills the rest). bwrap itself never
   * gets SIGTERM: it would die at once and leave the command no grace at all.
   */
  async function stop(graceMs: number): Promise<void> {
    if (child.pid === undefined) return;
    if (graceMs > 0) {
      signalAll(await commandProcesses(child.pid, SOCAT), 'SIGTERM');
      await Promise.race([exitedPromise, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    }
    killGroup();
  }

  function stopOnce(graceMs: number): void {
    stopping ??= stop(graceMs).catch((error: unknown) => {
      logger.warn({ runId: session.sandbox.runId, err: String(error) }, 'sandbox: stopping a command failed');
      killGroup();
    });
  }

  const exitedPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // setTimeout turns anything past 2^31-1 ms (about 24.8 days) into 1 ms; such a timeout means "none".
  const timer = setTimeout(
    () => {
      timedOut = true;
      stopOnce(options.killGraceMs ?? 2000);
    },
    Math.min(request.timeoutMs, 2 ** 31 - 1),
  );
  const onAbort = () => {
    if (timedOut) return;
    canceled = true;
    stopOnce(options.killGraceMs ?? 2000);
  };
  request.signal?.addEventListener('abort', onAbort, { once: true });

  const done = new Promise<SandboxExit>((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      reject(new ForgelinkError('sandbox_failed', `The sandbox could not start: ${error.message}`, { cause: error }));
    });
    child.once('close', (exitCode, signal) => {
      exited = true;
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      resolve({ exitCode, signal, timedOut, canceled });
    });
  });
  child.once('exit', () => {
    exited = true;
  });
  const execution: Execution = {
    kill: () => {
      stopOnce(0);
      killGroup();
    },
    done,
    diskBaseline: session.lastDiskUsage,
    stoppedForDisk: false,
    stopForDisk: () => {
      if (exited || timedOut || canceled || execution.stoppedForDisk) return;
      execution.stoppedForDisk = true;
      logger.info({ runId: session.sandbox.runId, diskBytes: session.limits.diskBytes }, 'sandbox: a command grew the disk use past the cap and is stopped');
      execution.kill();
    },
  };
  return execution;
}

function destroy(session: SessionState): Promise<void> {
  session.destroying ??= (async () => {
    for (const execution of session.running) execution.kill();
    await Promise.allSettled([...session.running].map((execution) => execution.done));
    await session.proxy.close();
    await removeRunCgroups(session.cgroups);
    await removeTree(session.runDir.root);
  })();
  return session.destroying;
}

function checkExec(request: SandboxExec): void {
  if (request.command.length === 0 || request.command.some((arg) => typeof arg !== 'string' || arg.includes('\0'))) {
    throw new InputError('invalid_command', 'command must be a non-empty list of strings without NUL bytes.', { field: 'command' });
  }
  const cwd = request.cwd ?? SANDBOX_PATHS.workspace;
  if (!path.posix.isAbsolute(cwd) || path.posix.normalize(cwd) !== cwd) {
    throw new InputError('invalid_cwd', `cwd "${cwd}" must be an absolute, normalised path inside the sandbox.`, { field: 'cwd' });
  }
  if (!Number.isFinite(request.timeoutMs) || request.timeoutMs <= 0) {
    throw new InputError('invalid_timeout', 'timeoutMs must be a positive number.', { field: 'timeoutMs' });
  }
  for (const [name, value] of Object.entries(request.env)) {
    if (name === '' || name.includes('=') || name.includes('\0') || typeof value !== 'string' || value.includes('\0')) {
      throw new InputError('invalid_env', `env: "${name}" is not a valid variable (names without "=", no NUL bytes).`, { field: 'env' });
    }
  }
}

/** One command's run: its end, how to kill it, and its part in the disk cap. */
type Execution = {
  kill(): void;
  done: Promise<SandboxExit>;
  /** The session's disk use measured last before the command started. */
  diskBaseline: number;
  stoppedForDisk: boolean;
  stopForDisk(): void;
};
