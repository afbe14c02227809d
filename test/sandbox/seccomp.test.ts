import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seccompRules } from '../../src/sandbox/seccomp.ts';
import { run, sandboxFixture, sh } from './helpers.ts';

const NO_NETWORK = { allow: [] };

/**
 * Calls each syscall through ctypes and prints `<name> <errno>` (0 when it worked). Without the filter the
 * keyring calls, userfaultfd, io_uring, name_to_handle_at and personality flags work in this sandbox (the
 * rest fail for lack of capabilities or by sysctl): only the seccomp filter refuses those.
 */
const PROBE = String.raw`
import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
numbers = {
    'x86_64': {'add_key': 248, 'request_key': 249, 'keyctl': 250, 'bpf': 321, 'perf_event_open': 298, 'userfaultfd': 323},
    'aarch64': {'add_key': 217, 'request_key': 218, 'keyctl': 219, 'bpf': 280, 'perf_event_open': 241, 'userfaultfd': 282},
}[platform.machine()]
numbers['io_uring_setup'] = 425
def result(name, value):
    print(name, 0 if value >= 0 else ctypes.get_errno(), flush=True)
class PerfAttr(ctypes.Structure):
    _fields_ = [('type', ctypes.c_uint32), ('size', ctypes.c_uint32), ('config', ctypes.c_uint64), ('rest', ctypes.c_uint64 * 14)]
class FileHandle(ctypes.Structure):
    _fields_ = [('bytes', ctypes.c_uint), ('type', ctypes.c_int), ('data', ctypes.c_ubyte * 128)]
os.makedirs('/tmp/x', exist_ok=True)
result('mount', libc.mount(b'none', b'/tmp/x', b'tmpfs', 0, None))
result('umount2', libc.umount2(b'/tmp', 0))
result('unshare', libc.unshare(0x00020000))
result('add_key', libc.syscall(numbers['add_key'], b'user', b'forgelink', b'x', 1, -3))
result('keyctl', libc.syscall(numbers['keyctl'], 0, -3, 0))
result('request_key', libc.syscall(numbers['request_key'], b'user', b'forgelink', None, 0))
result('bpf', libc.syscall(numbers['bpf'], 0, None, 0))
result('userfaultfd', libc.syscall(numbers['userfaultfd'], 1))
result('io_uring_setup', libc.syscall(numbers['io_uring_setup'], 1, ctypes.byref((ctypes.c_uint32 * 30)())))
attr = PerfAttr(type=1, size=ctypes.sizeof(PerfAttr), config=0)
attr.rest[4] = 0b1100000  # exclude_kernel | exclude_hv, which any process may count for itself
result('perf_event_open', libc.syscall(numbers['perf_event_open'], ctypes.byref(attr), 0, -1, -1, 0))
handle = FileHandle(bytes=128)
mount_id = ctypes.c_int()
result('name_to_handle_at', libc.name_to_handle_at(-100, b'/workspace', ctypes.byref(handle), ctypes.byref(mount_id), 0))
libc.personality.argtypes = [ctypes.c_ulong]
result('personality_no_aslr', libc.personality(0x0040000))
result('personality_query', libc.personality(0xffffffff))
pid = os.fork()
if pid == 0:
    os._exit(0 if libc.ptrace(0, 0, None, None) == 0 else 1)
result('ptrace_traceme', -1 if os.waitpid(pid, 0)[1] else 0)
`;

test('the seccomp filter is loaded and refuses what container runtimes refuse; ordinary tools still work', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({ runId: 'seccomp', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  const env = { MARK: box.marker };

  const status = await run(session, sh('grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; grep -E "^Seccomp:" /proc/1/status', box.marker), { env });
  assert.equal(status.stdout, 'NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp:\t2\n', 'the command and pid 1 inside run under a filter');

  const probe = await run(session, ['/usr/bin/python3', '-c', PROBE, box.marker], { env });
  assert.equal(probe.exitCode, 0, probe.stderr);
  const errno = Object.fromEntries(probe.stdout.trim().split('\n').map((line) => line.split(' ')));
  const EPERM = '1';
  assert.deepEqual(errno, {
    mount: EPERM,
    umount2: EPERM,
    unshare: EPERM,
    add_key: EPERM,
    keyctl: EPERM,
    request_key: EPERM,
    bpf: EPERM,
    userfaultfd: EPERM,
    io_uring_setup: EPERM,
    perf_event_open: EPERM,
    name_to_handle_at: EPERM,
    personality_no_aslr: EPERM,
    personality_query: '0',
    // Allowed on purpose (see src/sandbox/seccomp.ts): a process may trace its own sandbox's processes.
    ptrace_traceme: '0',
  });

  const tools = await run(
    session,
    sh(
      'unshare -m true 2>&1; git init -q /tmp/repo && git -C /tmp/repo commit -q --allow-empty -m x && git -C /tmp/repo log --format=%s; python3 -c "import threading, subprocess; print(subprocess.run([\'echo\', \'py\'], capture_output=True, text=True).stdout.strip())"; /opt/forgelink/bin/node -e "require(\'node:child_process\').execFileSync(\'true\'); console.log(\'node\')"',
      box.marker,
    ),
    { env: { ...env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@x', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@x' } },
  );
  assert.equal(tools.stdout, 'unshare: unshare failed: Operation not permitted\nx\npy\nnode\n', tools.stderr);
});

test('the rules follow moby: namespace flags, clone3, vsock and personality by argument; ptrace allowed from 4.8', () => {
  const rules = seccompRules('6.1.0-18-amd64', 'x64');
  const names = new Set(rules.map((rule) => rule.syscall));
  for (const name of ['mount', 'umount2', 'pivot_root', 'bpf', 'perf_event_open', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'add_key', 'request_key', 'keyctl', 'userfaultfd', 'setns', 'reboot', 'swapon', 'swapoff', 'acct', 'settimeofday', 'clock_settime', 'open_by_handle_at', 'name_to_handle_at', 'iopl', 'ioperm', 'lookup_dcookie', 'quotactl', 'syslog', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'fsopen', 'move_mount', 'open_tree']) {
    assert.ok(names.has(name), name);
  }
  assert.ok(!names.has('ptrace'));
  assert.ok(rules.every((rule) => rule.syscall !== 'clone' || (rule.args?.length === 1 && rule.args[0]?.op === 'masked_eq')));
  assert.deepEqual(rules.find((rule) => rule.syscall === 'clone3'), { syscall: 'clone3', errno: 38 });
  assert.deepEqual(
    seccompRules('4.4.0', 'x64').filter((rule) => ['ptrace', 'process_vm_readv', 'process_vm_writev'].includes(rule.syscall)).map((rule) => rule.syscall),
    ['ptrace', 'process_vm_readv', 'process_vm_writev'],
  );
  assert.equal(seccompRules('6.1.0', 's390x').find((rule) => rule.syscall === 'clone')?.args?.[0]?.index, 1);
});

/** The refused personalities, evaluated as the filter does: any rule that matches refuses. */
function personalityRefused(value: number): boolean {
  return seccompRules('6.1.0', 'x64')
    .filter((rule) => rule.syscall === 'personality')
    .some((rule) =>
      (rule.args ?? []).every((arg) => {
        if (arg.op === 'masked_eq') return Number(BigInt(value) & BigInt(arg.mask)) === arg.value;
        if (arg.op === 'gt') return value > arg.value;
        return arg.op === 'eq' ? value === arg.value : value !== arg.value;
      }),
    );
}

for (const [value, refused] of [
  [0, false],
  [8, false],
  [0x20000, false],
  [0x20008, false],
  [0xffffffff, false],
  [0x0040000, true],
  [0x0400000, true],
  [1, true],
  [0x20009, true],
  [0xfffffffe, true],
  [0x80000000, true],
  [2 ** 32, true],
] as const) {
  test(`personality(0x${value.toString(16)}) is ${refused ? 'refused' : 'allowed'}`, () => assert.equal(personalityRefused(value), refused));
}
