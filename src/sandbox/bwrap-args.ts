import { SANDBOX_PATHS } from './wrapper.ts';

/** What the host offers a sandbox, detected once per driver (see host-layout.ts). */
export type HostLayout = {
  /** `/bin`, `/lib`…: a symlink target on usr-merged systems (`usr/bin`), or null for a real directory. */
  topLevel: { path: string; symlinkTarget: string | null }[];
  /** Host files and directories under /etc that exist and are bound read-only at the same path. */
  etc: string[];
};

/** Everything one command's sandbox is made of. Host paths are absolute. */
export type SandboxPlan = {
  uid: number;
  gid: number;
  hostname: string;
  layout: HostLayout;
  /**
   * An unpacked run image's root (images.ts prepared its mount points), bound read-only at `/` instead of the
   * host's /usr and /etc; null for the host layout.
   */
  imageRoot: string | null;
  /** Host directory of generated /etc files (passwd, group, hosts, nsswitch.conf, hostname). */
  generatedEtcDir: string;
  generatedEtc: readonly string[];
  /** Host directory bound read-only at /run/forgelink (proxy socket, wrapper). */
  runtimeDir: string;
  homeDir: string;
  workspaceDir: string;
  cwd: string;
  tmpSizeBytes: number;
  shmSizeBytes: number;
  /** Read-only binds of single files: host source → path inside. */
  files: readonly { source: string; dest: string }[];
  extraReadOnlyPaths: readonly string[];
  /** Directories bound at `dest`, read-only unless `writable`. */
  mounts?: readonly { source: string; dest: string; writable: boolean }[];
  nodePath: string | null;
  env: Readonly<Record<string, string>>;
  /** The descriptor bwrap reads the seccomp filter (a BPF program) from. */
  seccompFd: number;
};

/**
 * bwrap's options for one command, in mount order. They reach bwrap through `--args <fd>`, never its
 * argv: /proc/<pid>/cmdline is world-readable, and the environment (the token among it) travels here as
 * `--clearenv` + `--setenv`, so the host-side helpers (sh, bwrap — root, when forgelink is) never
 * run with the agent's variables either (an `LD_PRELOAD` there would run on the host).
 *
 * Isolation: every namespace is new (user, pid, net, ipc, uts, cgroup); the user namespace maps the agent
 * to `uid`/`gid` without capabilities, and `--disable-userns` stops it from making another; a seccomp
 * filter (seccomp.ts) refuses the syscalls container runtimes withhold, for pid 1 inside too. The root is
 * a tmpfs remounted read-only at the end, holding only: /usr (read-only) and its top-level links, a few
 * /etc files, fresh /proc and /dev, size-limited /tmp and /dev/shm, the run's home and workspace, the
 * run's runtime dir, the given files and the operator's extra read-only paths. With a run image the root is
 * the image's tree instead (read-only), with the same mounts over it.
 */
export function bwrapOptions(plan: SandboxPlan): string[] {
  const args = [
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    '--uid',
    String(plan.uid),
    '--gid',
    String(plan.gid),
    '--cap-drop',
    'ALL',
    '--die-with-parent',
    '--new-session',
    '--seccomp',
    String(plan.seccompFd),
    '--hostname',
    plan.hostname,
  ];
  if (plan.imageRoot === null) args.push(...hostRoot(plan));
  else args.push(...imageRoot(plan, plan.imageRoot));
  args.push(
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--perms',
    '1777',
    '--size',
    String(plan.shmSizeBytes),
    '--tmpfs',
    '/dev/shm',
    '--perms',
    '1777',
    '--size',
    String(plan.tmpSizeBytes),
    '--tmpfs',
    '/tmp',
  );
  if (plan.imageRoot === null) args.push('--dir', '/var', '--symlink', '../tmp', '/var/tmp');
  args.push(
    '--ro-bind',
    plan.runtimeDir,
    SANDBOX_PATHS.runtime,
    '--bind',
    plan.homeDir,
    SANDBOX_PATHS.home,
    '--bind',
    plan.workspaceDir,
    SANDBOX_PATHS.workspace,
  );
  if (plan.nodePath !== null) args.push('--ro-bind', plan.nodePath, `${SANDBOX_PATHS.nodeBin}/node`);
  for (const file of plan.files) args.push('--ro-bind', file.source, file.dest);
  for (const extra of plan.extraReadOnlyPaths) args.push('--ro-bind', extra, extra);
  for (const mount of plan.mounts ?? []) args.push(mount.writable ? '--bind' : '--ro-bind', mount.source, mount.dest);
  // Nothing may grow the root, /dev or /etc/forgelink tmpfs (they have no size limit); their mounts stay writable.
  if (plan.imageRoot !== null) args.push('--remount-ro', SANDBOX_PATHS.generatedFiles);
  args.push('--remount-ro', '/dev', '--remount-ro', '/', '--chdir', plan.cwd, '--clearenv');
  for (const [name, value] of Object.entries(plan.env)) args.push('--setenv', name, value);
  return args;
}

/** The host layout: a tmpfs root holding the host's /usr (read-only), its top-level links and a few /etc files. */
function hostRoot(plan: SandboxPlan): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const entry of plan.layout.topLevel) {
    if (entry.symlinkTarget === null) args.push('--ro-bind', entry.path, entry.path);
    else args.push('--symlink', entry.symlinkTarget, entry.path);
  }
  for (const name of plan.generatedEtc) args.push('--ro-bind', `${plan.generatedEtcDir}/${name}`, `/etc/${name}`);
  for (const file of plan.layout.etc) args.push('--ro-bind', file, file);
  return args;
}

/**
 * An image's root: its tree read-only at `/`, with the generated /etc files bound over the image's (the image
 * cache made every mount point, so nothing has to be created in the read-only tree), and a small tmpfs at
 * /etc/forgelink for the run's own files (CA bundle, git config).
 */
function imageRoot(plan: SandboxPlan, root: string): string[] {
  const args = ['--ro-bind', root, '/'];
  for (const name of plan.generatedEtc) args.push('--ro-bind', `${plan.generatedEtcDir}/${name}`, `/etc/${name}`);
  args.push('--size', String(1024 ** 2), '--tmpfs', SANDBOX_PATHS.generatedFiles);
  return args;
}

/** The `--args` payload: NUL-separated, so no value may hold a NUL (it would split into two arguments). */
export function encodeArgs(args: readonly string[]): Buffer {
  for (const arg of args) {
    if (arg.includes('\0')) throw new Error('a sandbox argument or environment value contains a NUL byte');
  }
  return Buffer.from(args.map((arg) => `${arg}\0`).join(''), 'utf8');
}
