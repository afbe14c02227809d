import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { bwrapOptions, encodeArgs, type SandboxPlan } from '../../src/sandbox/bwrap-args.ts';
import { proxyEnv, sandboxEnv, wrapperScript } from '../../src/sandbox/wrapper.ts';

const PLAN: SandboxPlan = {
  uid: 1000,
  gid: 1000,
  hostname: 'forgelink-sandbox',
  layout: {
    topLevel: [
      { path: '/bin', symlinkTarget: 'usr/bin' },
      { path: '/lib64', symlinkTarget: null },
    ],
    etc: ['/etc/ssl/certs', '/etc/ld.so.cache'],
  },
  imageRoot: null,
  generatedEtcDir: '/data/sandboxes/run-1/etc',
  generatedEtc: ['passwd', 'hosts'],
  runtimeDir: '/data/sandboxes/run-1/runtime',
  homeDir: '/data/sandboxes/run-1/home',
  workspaceDir: '/data/runs/run-1/workspace',
  cwd: '/workspace',
  tmpSizeBytes: 1000,
  shmSizeBytes: 100,
  files: [{ source: '/data/sandboxes/run-1/files/0', dest: '/etc/forgelink/ca.pem' }],
  extraReadOnlyPaths: ['/opt/agent'],
  nodePath: '/srv/node/bin/node',
  env: { GITLAB_TOKEN: 'glpat-secret', PATH: '/usr/bin' },
  seccompFd: 4,
};

/** The [option, source, dest] triples of every bind in the options. */
function binds(args: string[]): string[][] {
  const found: string[][] = [];
  for (const [index, arg] of args.entries()) {
    if (arg === '--bind' || arg === '--ro-bind') found.push([arg, args[index + 1] as string, args[index + 2] as string]);
  }
  return found;
}

test('every namespace is new, user namespaces are disabled inside, capabilities dropped, a seccomp filter loaded', () => {
  const args = bwrapOptions(PLAN);
  assert.deepEqual(args.slice(0, 17), [
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    '--uid',
    '1000',
    '--gid',
    '1000',
    '--cap-drop',
    'ALL',
    '--die-with-parent',
    '--new-session',
    '--seccomp',
    '4',
    '--hostname',
    'forgelink-sandbox',
    '--ro-bind',
    '/usr',
  ]);
  assert.ok(!args.includes('--share-net'));
});

test('only the listed host paths are bound, and only the workspace and home writable', () => {
  assert.deepEqual(binds(bwrapOptions(PLAN)), [
    ['--ro-bind', '/usr', '/usr'],
    ['--ro-bind', '/lib64', '/lib64'],
    ['--ro-bind', '/data/sandboxes/run-1/etc/passwd', '/etc/passwd'],
    ['--ro-bind', '/data/sandboxes/run-1/etc/hosts', '/etc/hosts'],
    ['--ro-bind', '/etc/ssl/certs', '/etc/ssl/certs'],
    ['--ro-bind', '/etc/ld.so.cache', '/etc/ld.so.cache'],
    ['--ro-bind', '/data/sandboxes/run-1/runtime', '/run/forgelink'],
    ['--bind', '/data/sandboxes/run-1/home', '/home/agent'],
    ['--bind', '/data/runs/run-1/workspace', '/workspace'],
    ['--ro-bind', '/srv/node/bin/node', '/opt/forgelink/bin/node'],
    ['--ro-bind', '/data/sandboxes/run-1/files/0', '/etc/forgelink/ca.pem'],
    ['--ro-bind', '/opt/agent', '/opt/agent'],
  ]);
  const args = bwrapOptions({ ...PLAN, nodePath: null });
  assert.ok(!args.some((arg) => arg.includes('/opt/forgelink')));
});

test('on a run image: its tree read-only at /, nothing of the host\'s system, the run files on a tmpfs of their own', () => {
  const args = bwrapOptions({ ...PLAN, imageRoot: '/data/images/unpacked/sha256-ab/rootfs', nodePath: null, extraReadOnlyPaths: [] });
  assert.deepEqual(binds(args), [
    ['--ro-bind', '/data/images/unpacked/sha256-ab/rootfs', '/'],
    ['--ro-bind', '/data/sandboxes/run-1/etc/passwd', '/etc/passwd'],
    ['--ro-bind', '/data/sandboxes/run-1/etc/hosts', '/etc/hosts'],
    ['--ro-bind', '/data/sandboxes/run-1/runtime', '/run/forgelink'],
    ['--bind', '/data/sandboxes/run-1/home', '/home/agent'],
    ['--bind', '/data/runs/run-1/workspace', '/workspace'],
    ['--ro-bind', '/data/sandboxes/run-1/files/0', '/etc/forgelink/ca.pem'],
  ]);
  const text = args.join(' ');
  assert.match(text, /--tmpfs \/etc\/forgelink .* --remount-ro \/etc\/forgelink --remount-ro \/dev --remount-ro \/ /);
  assert.ok(args.indexOf('--unshare-all') < args.indexOf('--ro-bind'), 'the same namespaces as on the host layout');
});

test('size-limited /tmp and /dev/shm; the root and /dev are read-only once everything is mounted', () => {
  const args = bwrapOptions(PLAN).join(' ');
  assert.match(args, /--perms 1777 --size 100 --tmpfs \/dev\/shm --perms 1777 --size 1000 --tmpfs \/tmp /);
  assert.match(args, / --remount-ro \/dev --remount-ro \/ --chdir \/workspace --clearenv --setenv /);
  const remount = args.indexOf('--remount-ro');
  assert.ok(args.lastIndexOf('--bind') < remount && args.lastIndexOf('--tmpfs') < remount && args.lastIndexOf('--symlink') < remount);
});

test('the environment is cleared and rebuilt from the given variables, at the end', () => {
  const args = bwrapOptions(PLAN);
  const clear = args.indexOf('--clearenv');
  assert.deepEqual(args.slice(clear), ['--clearenv', '--setenv', 'GITLAB_TOKEN', 'glpat-secret', '--setenv', 'PATH', '/usr/bin']);
  assert.equal(args.indexOf('glpat-secret'), clear + 3, 'the value appears nowhere else');
});

test('the --args payload is NUL-separated and refuses a NUL inside a value', () => {
  assert.equal(encodeArgs(['--setenv', 'A', 'b c']).toString(), '--setenv\0A\0b c\0');
  assert.throws(() => encodeArgs(['--setenv', 'A', 'b\0--bind\0/\0/x']), /NUL/);
});

test('the wrapper is valid sh, carries no command text, and waits for the bridge port', () => {
  const script = wrapperScript(3128);
  execFileSync('/bin/sh', ['-n'], { input: script });
  assert.match(script, /0100007F:0C38/);
  assert.match(script, /^"\$@"$/m);
  assert.match(wrapperScript(8080), /0100007F:1F90/);
});

test('the proxy variables win over the caller; HOME and PATH are defaults; PWD is the cwd', () => {
  const env = sandboxEnv({ HTTPS_PROXY: 'http://evil:1', no_proxy: '*', HOME: '/custom', FOO: 'bar', PWD: '/elsewhere' }, '/workspace/sub');
  assert.equal(env.HTTPS_PROXY, 'http://127.0.0.1:3128');
  assert.equal(env.no_proxy, '');
  assert.equal(env.NODE_USE_ENV_PROXY, '1');
  assert.deepEqual(env, { ...proxyEnv(), HOME: '/custom', PATH: '/opt/forgelink/bin:/usr/local/bin:/usr/bin:/bin', FOO: 'bar', PWD: '/workspace/sub' });
});

test('a mount (the repository cache) is bound read-only unless this command may write it, before the root turns read-only', () => {
  const mounts = (writable: boolean) => bwrapOptions({ ...PLAN, mounts: [{ source: '/data/repo-cache/abc', dest: '/opt/forgelink/mirror', writable }] });
  assert.deepEqual(binds(mounts(false)).at(-1), ['--ro-bind', '/data/repo-cache/abc', '/opt/forgelink/mirror']);
  assert.deepEqual(binds(mounts(true)).at(-1), ['--bind', '/data/repo-cache/abc', '/opt/forgelink/mirror']);
  const args = mounts(false);
  assert.ok(args.indexOf('/opt/forgelink/mirror') < args.indexOf('--remount-ro'));
  assert.ok(!binds(bwrapOptions(PLAN)).some(([, , dest]) => dest === '/opt/forgelink/mirror'), 'no mount without one');
});
