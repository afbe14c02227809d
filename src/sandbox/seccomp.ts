import { spawn } from 'node:child_process';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ForgelinkError } from '../core/index.ts';

/** One refusal: the syscall fails with `errno` (when every comparison of `args` holds). */
export type SeccompRule = { syscall: string; errno: number; args?: SeccompArg[] };
export type SeccompArg =
  | { index: number; op: 'eq' | 'ne' | 'gt'; value: number }
  | { index: number; op: 'masked_eq'; mask: number; value: number };

const EPERM = 1;
const ENOSYS = 38;

/**
 * What Docker's default seccomp profile (moby/profiles, `seccomp/default.json`) withholds from a container
 * without capabilities — the agent has none — refused with EPERM. Everything else is allowed: a list of
 * refusals rather than moby's list of permissions, so a syscall newer than this list (or than the host's
 * libseccomp) keeps working for the toolchains agents run, as in Flatpak's bubblewrap filter.
 */
const REFUSED: Record<string, readonly string[]> = {
  // Mounts, in the old API and the new one; a sandbox never changes its mounts.
  mounts: ['mount', 'umount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr'],
  // Joining namespaces (creating them is refused by flag below).
  namespaces: ['setns'],
  // Kernel attack surface that needs privileges or has a history of escapes.
  kernel: ['bpf', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'fanotify_init', 'lookup_dcookie'],
  modules: ['init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms', 'kexec_load', 'kexec_file_load'],
  // The kernel keyring is not namespaced.
  keyring: ['add_key', 'request_key', 'keyctl'],
  // The host's clock, power, swap, accounting, quotas and kernel log.
  host: [
    'reboot',
    'swapon',
    'swapoff',
    'acct',
    'settimeofday',
    'clock_settime',
    'stime',
    'quotactl',
    'quotactl_fd',
    'syslog',
    'sethostname',
    'setdomainname',
    'vhangup',
  ],
  // File handles bypass the mount namespace (the "shocker" escape).
  handles: ['open_by_handle_at', 'name_to_handle_at'],
  // Raw I/O ports.
  rawio: ['iopl', 'ioperm'],
  // Other processes' memory policy and descriptors (moby: CAP_SYS_NICE, CAP_SYS_PTRACE).
  processes: ['mbind', 'set_mempolicy', 'set_mempolicy_home_node', 'get_mempolicy', 'migrate_pages', 'move_pages', 'kcmp', 'pidfd_getfd', 'process_madvise'],
  // Linux security modules' per-process attributes.
  lsm: ['lsm_get_self_attr', 'lsm_set_self_attr', 'lsm_list_modules'],
  // Obsolete or never implemented.
  obsolete: ['_sysctl', 'uselib', 'ustat', 'sysfs', 'nfsservctl', 'afs_syscall', 'getpmsg', 'putpmsg', 'security', 'tuxcall', 'vserver'],
};

/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (moby's clone mask 0x7E020000). */
const CLONE_NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
/** CLONE_NEWTIME: for unshare only (for clone the bit means something else). */
const CLONE_NEWTIME = 0x00000080;
const AF_VSOCK = 40;
/** The personalities moby allows: PER_LINUX, PER_LINUX32, UNAME26, both, and the query 0xffffffff. */
const QUERY_PERSONALITY = 0xffffffff;

function kernelAtLeast(kernelRelease: string, major: number, minor: number): boolean {
  const [maj = 0, min = 0] = kernelRelease.split('.').map((part) => Number.parseInt(part, 10));
  return maj > major || (maj === major && min >= minor);
}

/**
 * The sandbox's seccomp rules, for a host running `kernelRelease` on `arch` (Node's names).
 *
 * ptrace, process_vm_readv and process_vm_writev stay allowed from Linux 4.8 on, as in moby's profile:
 * since 4.8 the kernel checks seccomp again after a tracer changes a syscall, so tracing cannot step
 * around the filter; and a sandboxed process can only trace processes of its own sandbox (its own pid
 * namespace, where even bwrap's pid 1 runs under this filter), so debuggers and strace keep working.
 * Before 4.8 they are refused.
 */
export function seccompRules(kernelRelease: string = release(), arch: string = process.arch): SeccompRule[] {
  const rules: SeccompRule[] = Object.values(REFUSED)
    .flat()
    .map((syscall) => ({ syscall, errno: EPERM }));
  if (!kernelAtLeast(kernelRelease, 4, 8)) {
    for (const syscall of ['ptrace', 'process_vm_readv', 'process_vm_writev']) rules.push({ syscall, errno: EPERM });
  }
  // libseccomp ORs the rules of one syscall and takes one comparison per argument in a rule, so "any
  // namespace flag set" is one rule per flag. s390 passes clone's flags second.
  const cloneFlags = arch === 's390x' || arch === 's390' ? 1 : 0;
  for (const flag of CLONE_NAMESPACE_FLAGS) {
    rules.push({ syscall: 'clone', errno: EPERM, args: [{ index: cloneFlags, op: 'masked_eq', mask: flag, value: flag }] });
  }
  for (const flag of [...CLONE_NAMESPACE_FLAGS, CLONE_NEWTIME]) {
    rules.push({ syscall: 'unshare', errno: EPERM, args: [{ index: 0, op: 'masked_eq', mask: flag, value: flag }] });
  }
  // clone3 passes its flags in memory a filter cannot read: ENOSYS makes glibc fall back to clone (moby does the same).
  rules.push({ syscall: 'clone3', errno: ENOSYS });
  // vsock is not namespaced: it reaches the hypervisor's host whatever the network namespace.
  rules.push({ syscall: 'socket', errno: EPERM, args: [{ index: 0, op: 'eq', value: AF_VSOCK }] });
  rules.push(...personalityRules());
  return rules;
}

/**
 * personality() only with moby's values: 0, 8, 0x20000, 0x20008, 0xffffffff. With one comparison per rule,
 * bit 31 (no personality flag) tells the query apart: with it clear, any bit other than PER_LINUX32's (3)
 * and UNAME26's (17) is refused; with it set, any bit clear (so anything but the query); and anything
 * wider than 32 bits.
 */
function personalityRules(): SeccompRule[] {
  const bit31 = 0x80000000;
  const rules: SeccompRule[] = [];
  for (let bit = 0; bit < 31; bit += 1) {
    const flag = 2 ** bit;
    if (bit !== 3 && bit !== 17) {
      rules.push({ syscall: 'personality', errno: EPERM, args: [{ index: 0, op: 'masked_eq', mask: bit31 + flag, value: flag }] });
    }
    rules.push({ syscall: 'personality', errno: EPERM, args: [{ index: 0, op: 'masked_eq', mask: bit31 + flag, value: bit31 }] });
  }
  rules.push({ syscall: 'personality', errno: EPERM, args: [{ index: 0, op: 'gt', value: QUERY_PERSONALITY }] });
  return rules;
}

const COMPILER = fileURLToPath(new URL('./seccomp-bpf.py', import.meta.url));
export const SECCOMP_PYTHON = '/usr/bin/python3';

/** The compiled filter, and the rules' syscalls this host's libseccomp could not name (skipped). */
export type SeccompProgram = { bpf: Buffer; unknown: string[] };

/**
 * Compiles the rules with libseccomp (Debian's python3-seccomp), once per driver: a BPF program for
 * bwrap's `--seccomp <fd>`. Fails with `sandbox_unavailable` when the binding is missing: runs never start
 * without their filter.
 */
export async function compileSeccomp(rules: readonly SeccompRule[], python: string = SECCOMP_PYTHON): Promise<SeccompProgram> {
  const child = spawn(python, ['-I', COMPILER], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdin.on('error', () => {});
  child.stdin.end(JSON.stringify({ rules }));
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  }).catch((error: unknown) => {
    throw new ForgelinkError('sandbox_unavailable', `Sandboxed runs need ${python} with python3-seccomp to build their seccomp filter: ${String(error)}.`);
  });
  const bpf = Buffer.concat(stdout);
  // A classic BPF program is a list of 8-byte instructions.
  if (exitCode !== 0 || bpf.length === 0 || bpf.length % 8 !== 0) {
    const reason = /No module named '?seccomp'?/.test(stderr) ? 'the Debian package python3-seccomp is not installed' : stderr.trim().split('\n').at(-1);
    throw new ForgelinkError('sandbox_unavailable', `Sandboxed runs need a seccomp filter, which could not be built: ${reason ?? `exit code ${exitCode}`} (apt-get install python3-seccomp).`);
  }
  const unknown = [...stderr.matchAll(/^unknown (\S+)$/gm)].map((match) => match[1] as string);
  return { bpf, unknown };
}
