import { chmod, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConflictError, InputError } from '../core/index.ts';
import { startTimeOf } from './processes.ts';
import { SANDBOX_PATHS } from './wrapper.ts';

/**
 * A run's own directory under the driver's state dir (mode 0700, so only forgelink's uid — and the
 * sandbox, which maps to it — gets in):
 *   owner.json   which forgelink process made it (stale ones are swept by the next create)
 *   runtime/     → /run/forgelink, read-only: proxy.sock, wrapper.sh
 *   etc/         generated passwd, group, hosts, nsswitch.conf, hostname
 *   files/       the session's `files`, each bound read-only at its path
 *   home/        → /home/agent, read-write, kept across the session's commands
 */
export type RunDir = {
  root: string;
  runtimeDir: string;
  proxySocket: string;
  etcDir: string;
  homeDir: string;
  files: { source: string; dest: string }[];
};

export const GENERATED_ETC = ['passwd', 'group', 'hosts', 'nsswitch.conf', 'hostname'] as const;

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Paths a file may not be placed at: system trees, the sandbox's own mounts and writable places. */
const RESERVED = ['/usr', '/proc', '/dev', '/tmp', '/var', '/run/forgelink', '/opt/forgelink', '/bin', '/sbin', '/lib', '/lib64', SANDBOX_PATHS.workspace, SANDBOX_PATHS.home];

export function checkRunId(runId: string): void {
  if (!RUN_ID.test(runId)) {
    throw new InputError('invalid_run_id', 'runId must be 1-128 letters, digits, dots, dashes or underscores.', { field: 'runId' });
  }
}

export function checkFilePath(dest: string): void {
  const normal = path.posix.normalize(dest);
  const reserved = RESERVED.find((prefix) => normal === prefix || normal.startsWith(`${prefix}/`));
  if (!path.posix.isAbsolute(dest) || normal !== dest || dest === '/' || dest.endsWith('/') || reserved !== undefined) {
    throw new InputError(
      'invalid_sandbox_file',
      `files: "${dest}" must be an absolute, normalised file path outside ${RESERVED.join(', ')}.`,
      { field: 'files' },
    );
  }
}

function generatedEtc(uid: number, gid: number, hostname: string): Record<(typeof GENERATED_ETC)[number], string> {
  return {
    passwd: `root:x:0:0:root:/root:/usr/sbin/nologin\nagent:x:${uid}:${gid}:forgelink agent:${SANDBOX_PATHS.home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\nagent:x:${gid}:\nnogroup:x:65534:\n`,
    hosts: `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    'nsswitch.conf': 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n',
    hostname: `${hostname}\n`,
  };
}

export async function createRunDir(
  stateDir: string,
  runId: string,
  contents: { uid: number; gid: number; hostname: string; wrapper: string; files: Readonly<Record<string, string>> },
): Promise<RunDir> {
  const root = path.join(stateDir, runId);
  try {
    await mkdir(root, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ConflictError('sandbox_exists', `A sandbox for run ${runId} already exists.`, { field: 'runId' });
    }
    throw error;
  }
  const dir: RunDir = {
    root,
    runtimeDir: path.join(root, 'runtime'),
    proxySocket: path.join(root, 'runtime', 'proxy.sock'),
    etcDir: path.join(root, 'etc'),
    homeDir: path.join(root, 'home'),
    files: [],
  };
  const start = await startTimeOf(process.pid);
  // Written aside and renamed into place: another run looking for leftovers (staleRunDirs) reads all of it or none.
  await writeFile(path.join(root, 'owner.json.new'), JSON.stringify({ pid: process.pid, start }), { mode: 0o600 });
  await rename(path.join(root, 'owner.json.new'), path.join(root, 'owner.json'));
  for (const sub of [dir.runtimeDir, dir.etcDir, dir.homeDir, path.join(root, 'files')]) await mkdir(sub, { mode: 0o700 });
  await writeFile(path.join(dir.runtimeDir, 'wrapper.sh'), contents.wrapper, { mode: 0o500 });
  for (const [name, text] of Object.entries(generatedEtc(contents.uid, contents.gid, contents.hostname))) {
    await writeFile(path.join(dir.etcDir, name), text, { mode: 0o400 });
  }
  for (const [index, [dest, text]] of Object.entries(contents.files).entries()) {
    const source = path.join(root, 'files', String(index));
    await writeFile(source, text, { mode: 0o400 });
    dir.files.push({ source, dest });
  }
  return dir;
}

/** How old an owner file that cannot be read as one must be before its directory counts as a dead process's. */
const UNREADABLE_OWNER_GRACE_MS = 60_000;

/**
 * Run dirs whose forgelink process is gone (a crash or kill -9): their names, for the caller to clean up. An owner
 * file is renamed into place whole, so one that is not valid JSON is damaged; it counts once it is a minute old.
 */
export async function staleRunDirs(stateDir: string): Promise<string[]> {
  const stale: string[] = [];
  for (const name of await readdir(stateDir).catch(() => [])) {
    const file = path.join(stateDir, name, 'owner.json');
    const owner = await readFile(file, 'utf8').catch(() => null);
    if (owner === null) continue;
    let parsed: { pid?: unknown; start?: unknown };
    try {
      parsed = JSON.parse(owner) as { pid?: unknown; start?: unknown };
    } catch {
      const modified = (await stat(file).catch(() => null))?.mtimeMs ?? 0;
      if (Date.now() - modified >= UNREADABLE_OWNER_GRACE_MS) stale.push(name);
      continue;
    }
    const alive = typeof parsed.pid === 'number' && (await startTimeOf(parsed.pid)) === parsed.start;
    if (!alive) stale.push(name);
  }
  return stale;
}

/**
 * Removes a tree the agent wrote into. As root nothing stops `rm`; as a normal user a directory the agent
 * made read-only (chmod 500) would, so on failure every directory is made writable again and rm retried.
 */
export async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES' && (error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
  }
  await makeWritable(dir);
  await rm(dir, { recursive: true, force: true });
}

async function makeWritable(dir: string): Promise<void> {
  const info = await lstat(dir).catch(() => null);
  if (info === null || !info.isDirectory()) return;
  await chmod(dir, 0o700).catch(() => {});
  for (const entry of await readdir(dir).catch(() => [])) await makeWritable(path.join(dir, entry));
}
