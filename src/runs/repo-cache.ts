import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, lstat, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ForgelinkError, formatBytes, runCanceled } from '../core/index.ts';
import { SANDBOX_PATHS, removeTree } from '../sandbox/index.ts';

/**
 * The repository cache (docs/architecture.md, "The repository cache"; docs/security.md, "The repository cache"):
 * one bare mirror per GitLab instance and project under `<data dir>/repo-cache`, which run workspaces borrow
 * their objects from (`git clone --reference`). Layout of the cache directory:
 *
 *   <key>/repo.git   the mirror; <key>/ is bound read-only at MIRROR_MOUNT in the run's sandbox
 *   <key>/build-*    a mirror being built (first fetch, or a rebuild); renamed to repo.git when complete
 *   <key>/fetching   present while a fetch into repo.git runs: found later, the fetch was cut short
 *   <key>.json       what the mirror is of, when it was used and fetched last (no token, ever)
 *   <key>.lock       held exclusively (flock) by whoever fetches into, rebuilds or evicts the mirror
 *   <key>.use        held shared by every run whose workspace borrows from the mirror; eviction needs it exclusively
 *
 * The lock files live outside the bound directory so an agent can never hold them.
 */

/** Where a project's cache directory appears inside the run's sandbox. */
export const MIRROR_MOUNT = SANDBOX_PATHS.mirror;
const REPO = 'repo.git';
/** The mirror inside the sandbox: the workspace's `objects/info/alternates` points into it. */
export const MIRROR_IN_SANDBOX = `${MIRROR_MOUNT}/${REPO}`;

const FLOCK = '/usr/bin/flock';
const GIT = '/usr/bin/git';
const HOST_GIT_TIMEOUT_MS = 30 * 60_000;

export function repoCacheDir(dataDir: string): string {
  return path.join(dataDir, 'repo-cache');
}

/** What a mirror is of: one project of one GitLab instance (by id when the API told us, else by path). */
export type MirrorOf = { baseUrl: string; projectId: number | null; projectPath: string };

type MirrorRecord = MirrorOf & { key: string; createdAt: string; lastUsedAt: string; lastFetchAt: string | null };

export type Mirror = {
  key: string;
  /** `<root>/<key>`: bound at MIRROR_MOUNT. */
  dir: string;
  repo: string;
  lockFile: string;
  useFile: string;
  recordFile: string;
};

export function mirrorKey(of: MirrorOf): string {
  const project = of.projectId === null ? `path:${of.projectPath}` : `id:${of.projectId}`;
  return createHash('sha256').update(`${of.baseUrl.replace(/\/+$/, '')}\n${project}`).digest('hex').slice(0, 32);
}

function mirrorAt(root: string, key: string): Mirror {
  const dir = path.join(root, key);
  return { key, dir, repo: path.join(dir, REPO), lockFile: `${dir}.lock`, useFile: `${dir}.use`, recordFile: `${dir}.json` };
}

/**
 * The project's mirror, held in use (shared) until `use.release()`: eviction then leaves it alone. Its directory is
 * made (empty) after the lock is taken, so the sandbox can bind it before the first fetch and no eviction removes it meanwhile.
 */
export async function openMirror(root: string, of: MirrorOf, signal?: AbortSignal): Promise<{ mirror: Mirror; use: HeldLock }> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  const mirror = mirrorAt(root, mirrorKey(of));
  const use = await holdShared(mirror.useFile, signal);
  try {
    await mkdir(mirror.dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    await use.release();
    throw error;
  }
  return { mirror, use };
}

// ---------------------------------------------------------------------------------------------------------
// Locks: the kernel's flock(2) on a descriptor of the lock file that this process keeps open. flock(1) from util-linux
// takes it on that descriptor (handed to it as its descriptor 3) and exits; the lock belongs to the open file, so it
// stays held until this process closes it — or dies, for any reason. Processes sharing the data dir (several forgelink
// processes on one machine) exclude each other like the runs of one, and every open of the file is a holder of its own.

export type HeldLock = { release(): Promise<void> };

/** Takes the lock on `file`; null when `wait` is false and someone else holds it. */
export async function takeLock(file: string, options: { shared: boolean; wait: boolean; signal?: AbortSignal }): Promise<HeldLock | null> {
  if (options.signal?.aborted) throw runCanceled();
  let handle: FileHandle;
  try {
    // Private like the rest of the data directory; opened close-on-exec, so no other child of this process holds it.
    handle = await open(file, 'a', 0o600);
  } catch (error) {
    throw new ForgelinkError('repo_cache_failed', `cannot open the lock file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const args = [options.shared ? '--shared' : '--exclusive', ...(options.wait ? [] : ['--nonblock']), '--conflict-exit-code', '75', '3'];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(FLOCK, args, { stdio: ['ignore', 'ignore', 'pipe', handle.fd], env: { PATH: '/usr/bin:/bin' } });
    let stderr = '';
    const onAbort = () => child.kill('SIGKILL');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    // Canceled while the file was being opened: a listener added now would never be called.
    if (options.signal?.aborted) onAbort();
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => reject(new ForgelinkError('repo_cache_failed', `flock could not start: ${error.message}`, { cause: error })));
    child.once('close', (exitCode) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (exitCode === 0 || exitCode === 75 || options.signal?.aborted) resolve(exitCode);
      else reject(new ForgelinkError('repo_cache_failed', `flock ${file} failed (exit code ${exitCode}): ${stderr.trim()}`));
    });
  }).catch(async (error: unknown) => {
    await handle.close();
    throw error;
  });
  // Taken, but the run was canceled meanwhile: given back at once.
  if (code !== 0 || options.signal?.aborted) {
    await handle.close();
    if (options.signal?.aborted) throw runCanceled();
    return null;
  }
  let released: Promise<void> | null = null;
  return { release: () => (released ??= handle.close()) };
}

/**
 * A shared lock this process holds once for all its runs that want it at the same time: the first takes it (one
 * flock), the others join, the last to leave releases it. Whatever is read from the mirror while it is held stays
 * true until then (no writer can take the lock exclusive meanwhile), so `memo` keeps such a reading for everyone.
 */
type SharedHold = { lock: Promise<HeldLock>; count: number; memo: Promise<unknown> | null };
const sharedHolds = new Map<string, SharedHold>();

export async function holdShared(file: string, signal?: AbortSignal): Promise<{ release(): Promise<void>; memo<T>(read: () => Promise<T>): Promise<T> }> {
  if (signal?.aborted) throw runCanceled();
  let hold = sharedHolds.get(file);
  if (hold === undefined) {
    // Taken for whoever holds it: no one run's cancel stops the wait (each waiter stops waiting on its own).
    const created: SharedHold = { lock: takeLock(file, { shared: true, wait: true }) as Promise<HeldLock>, count: 0, memo: null };
    sharedHolds.set(file, created);
    created.lock.catch(() => {
      if (sharedHolds.get(file) === created) sharedHolds.delete(file);
    });
    hold = created;
  }
  const joined = hold;
  joined.count += 1;
  try {
    await untilAborted(joined.lock, signal);
  } catch (error) {
    await leave(file, joined);
    throw error;
  }
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      await leave(file, joined);
    },
    memo: <T>(read: () => Promise<T>) => (joined.memo ??= read()) as Promise<T>,
  };
}

/** One holder fewer; the last one gives the lock back (once it is granted, if it is still awaited). */
async function leave(file: string, hold: SharedHold): Promise<void> {
  hold.count -= 1;
  if (hold.count > 0) return;
  if (sharedHolds.get(file) === hold) sharedHolds.delete(file);
  await hold.lock.then(
    (lock) => lock.release(),
    () => {},
  );
}

/** `promise`, or the run's cancel if that comes first (the promise goes on; its outcome is then nobody's). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(runCanceled());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(runCanceled());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

async function withLock<T>(file: string, signal: AbortSignal | undefined, use: () => Promise<T>): Promise<T> {
  const lock = (await takeLock(file, { shared: false, wait: true, ...(signal ? { signal } : {}) })) as HeldLock;
  try {
    return await use();
  } finally {
    await lock.release();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Host-side git on a mirror: local operations only (checks, init, refs). The fetch from GitLab is the caller's
// (MirrorFetch): forgelink's own git on the host (gitlab-git.ts), or in the run's sandbox, always with the run's token.

type GitResult = { code: number | null; stdout: string; stderr: string };

function hostGit(repo: string, args: readonly string[], input?: string): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      GIT,
      ['-C', repo, '-c', 'core.hooksPath=/dev/null', ...args],
      {
        // No system or user configuration, nothing from forgelink's own environment.
        env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0', LANG: 'C' },
        timeout: HOST_GIT_TIMEOUT_MS,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error === null || typeof error.code === 'number') {
          resolve({ code: error === null ? 0 : (error.code as number), stdout: String(stdout), stderr: String(stderr) });
          return;
        }
        // git did not run, or was stopped (no exit code): that says nothing about the mirror, so it is not taken as damage.
        reject(new ForgelinkError('repo_cache_failed', `git ${args[0]} in the repository cache did not run to its end: ${error.message}`, { cause: error }));
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => null)) !== null;
}

/** Mirrors this process has checked in full (`git fsck --connectivity-only`) since it started. */
const verified = new Set<string>();

/**
 * Why the mirror must not be served (`problem`), or its branches and tags when it may be. Every use checks that
 * each ref names an object the mirror holds and can read (`%(objecttype)` fails otherwise), in the call that lists
 * them; the first use by this process, and any use after a fetch that was cut short (its `fetching` marker left
 * behind), checks the whole history's connectivity too.
 */
export async function checkMirror(mirror: Mirror, options: { full: boolean }): Promise<{ problem: string; refs: null } | { problem: null; refs: Map<string, string> }> {
  if (!(await exists(path.join(mirror.repo, 'HEAD')))) return { problem: 'it has no HEAD', refs: null };
  const listed = await hostGit(mirror.repo, ['for-each-ref', '--format=%(objectname) %(refname) %(objecttype)']);
  if (listed.code !== 0) return { problem: `a ref names an object it cannot read (${firstLine(listed.stderr)})`, refs: null };
  if (options.full) {
    const fsck = await hostGit(mirror.repo, ['fsck', '--connectivity-only', '--no-dangling', '--no-progress']);
    if (fsck.code !== 0) return { problem: `git fsck found it broken (${firstLine(fsck.stderr || fsck.stdout)})`, refs: null };
    verified.add(mirror.repo);
  }
  return { problem: null, refs: parseRefs(listed.stdout, BRANCHES_AND_TAGS) };
}

/** Why the mirror must not be served, or null when it may be (checkMirror without the refs). */
export async function mirrorProblem(mirror: Mirror, options: { full: boolean }): Promise<string | null> {
  return (await checkMirror(mirror, options)).problem;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 200) || 'no message';
}

/** How many branches and tags differ between the mirror and GitLab (new, gone or moved). */
function differences(mirror: ReadonlyMap<string, string>, expected: ReadonlyMap<string, string>): number {
  let count = 0;
  for (const [name, sha] of expected) if (mirror.get(name) !== sha) count += 1;
  for (const name of mirror.keys()) if (!expected.has(name)) count += 1;
  return count;
}

async function refsOf(repo: string, prefixes: readonly string[] = BRANCHES_AND_TAGS): Promise<Map<string, string>> {
  return parseRefs((await hostGit(repo, ['for-each-ref', '--format=%(objectname) %(refname)', ...prefixes])).stdout, prefixes);
}

const BRANCHES_AND_TAGS = ['refs/heads/', 'refs/tags/'];

/** `for-each-ref` lines that start `<sha> <ref>` (anything after is ignored): the refs under `prefixes`, by name. */
function parseRefs(stdout: string, prefixes: readonly string[]): Map<string, string> {
  const refs = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [sha, name] = line.split(' ');
    if (sha && name && prefixes.some((prefix) => name.startsWith(prefix))) refs.set(name, sha);
  }
  return refs;
}

/**
 * Why the mirror is already up to date for the run, or null: another run's fetch began after this one was
 * requested (a run that did not list GitLab's refs), or it matches the run's listing.
 */
function upToDate(input: MirrorUpdateInput, refs: ReadonlyMap<string, string>, lastFetchAt: string | null): 'fresh' | 'matches' | null {
  if (input.expected === null) return fetchedAfter(lastFetchAt, input.since) ? 'fresh' : null;
  return differences(refs, input.expected) === 0 ? 'matches' : null;
}

function fetchedAfter(lastFetchAt: string | null, since: Date): boolean {
  return lastFetchAt !== null && Date.parse(lastFetchAt) >= since.getTime();
}

const UP_TO_DATE_LINES = {
  fresh: 'Repository cache: warm, another run began a fetch into the mirror after this one was requested; sharing that fetch.',
  matches: 'Repository cache: warm, the mirror already matches GitLab; nothing to fetch.',
} as const;

/**
 * A mirror's own configuration: private like the rest of the data directory (files 0600, directories 0700, whoever
 * writes them later), no background maintenance (a fetch ends with its command), no reflogs, and objects the upstream
 * dropped kept a while (a running workspace may still borrow them).
 */
const MIRROR_CONFIG: readonly (readonly [string, string])[] = [
  ['core.sharedRepository', '0600'],
  ['gc.autoDetach', 'false'],
  ['core.logAllRefUpdates', 'false'],
  ['gc.pruneExpire', '2.weeks.ago'],
];

/** A new bare repository to fetch into: no hooks, the mirror's configuration. */
async function initMirror(repo: string): Promise<void> {
  await mkdir(repo, { recursive: true, mode: 0o700 });
  for (const args of [['init', '--quiet', '--bare', '--template='], ...MIRROR_CONFIG.map(([key, value]) => ['config', key, value])]) {
    const result = await hostGit(repo, args);
    if (result.code !== 0) throw new ForgelinkError('repo_cache_failed', `git ${args[0]} in the repository cache failed: ${firstLine(result.stderr)}`);
  }
}

async function readRecord(mirror: Mirror): Promise<MirrorRecord | null> {
  try {
    return JSON.parse(await readFile(mirror.recordFile, 'utf8')) as MirrorRecord;
  } catch {
    return null;
  }
}

async function writeRecord(mirror: Mirror, record: MirrorRecord): Promise<void> {
  const temporary = `${mirror.recordFile}.${randomBytes(4).toString('hex')}`;
  await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, mirror.recordFile);
}

/**
 * Marks the mirror used at `now`; `fetchStarted` (when a fetch into it began) becomes its `lastFetchAt`: a run
 * requested before that moment may take the mirror as GitLab had it then (what that fetch brought).
 */
async function touchRecord(mirror: Mirror, of: MirrorOf, now: Date, fetchStarted: Date | null): Promise<void> {
  const old = await readRecord(mirror);
  const at = now.toISOString();
  await writeRecord(mirror, {
    key: mirror.key,
    ...of,
    createdAt: old?.createdAt ?? at,
    lastUsedAt: at,
    lastFetchAt: fetchStarted !== null ? fetchStarted.toISOString() : (old?.lastFetchAt ?? null),
  });
}

/** Leftovers of a build or a rebuild that a dead process left behind (the caller holds the mirror's lock). */
async function removeLeftovers(mirror: Mirror): Promise<void> {
  for (const name of await readdir(mirror.dir).catch(() => [] as string[])) {
    if (name.startsWith('build-') || name.startsWith('trash-')) await removeTree(path.join(mirror.dir, name));
  }
}

/**
 * Bytes of the files under `dir` (what `du --apparent-size` would say), walked in this process: a mirror holds a
 * few packs and loose objects, so this is cheaper than starting du or `git count-objects`.
 */
export async function treeBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  let total = 0;
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    total += (await lstat(path.join(entry.parentPath, entry.name)).catch(() => null))?.size ?? 0;
  }
  return total;
}

async function objectBytes(repo: string): Promise<number> {
  return treeBytes(path.join(repo, 'objects'));
}

/** What a mirror holds of GitLab: every branch and every tag, as they are (the fetch prunes what GitLab deleted). */
export const MIRROR_REFSPECS = ['+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'] as const;

/**
 * How a run brings GitLab's branches and tags into a mirror, always with its own token; each throws when git fails.
 * `fetch` runs `git fetch` into a repository of the mirror's directory, named by its path on the host and inside the
 * run's sandbox (the caller fetches on the host, or in the sandbox with the mirror bound writable). `clone`, when
 * the caller has one, makes a new mirror at a host path with `git clone --bare` and the given configuration;
 * without it a mirror is built by `git init` and `fetch`.
 */
export type MirrorFetch = {
  fetch(repo: { host: string; sandbox: string }): Promise<void>;
  clone: ((repo: string, config: readonly (readonly [string, string])[]) => Promise<void>) | null;
};

export type MirrorUpdate = {
  state: 'cold' | 'warm';
  fetched: boolean;
  rebuilt: boolean;
  /** The mirror's branches and tags by full name, as the update left them. */
  refs: Map<string, string>;
};

/**
 * Makes the mirror's branches and tags those `expected` names (what the run's token just listed at GitLab): one fetch
 * at a time per mirror. A run that finds the mirror already up to date for it (it matches GitLab's listing, or
 * another run's fetch began after this run was requested) only reads it, under the lock taken shared, so many
 * such runs check it at once; everything that writes (a fetch, a rebuild, moving HEAD) holds it exclusive. A mirror
 * that fails its check is rebuilt, never served.
 */
export type MirrorUpdateInput = {
  mirror: Mirror;
  of: MirrorOf;
  /**
   * What the run's token just listed at GitLab (`git ls-remote`), or null when the run did not list (its API
   * preflight vouched for the project): then the mirror is fetched unless a fetch began after `since`.
   */
  expected: ReadonlyMap<string, string> | null;
  /** When the run was requested. */
  since: Date;
  /** The branch GitLab's HEAD names: the mirror's HEAD follows it. */
  head: string | null;
  fetch: MirrorFetch;
  log: (line: string) => void;
  now: () => Date;
  signal?: AbortSignal;
  /** Check the whole history even if this process checked it before (after a clone from it failed). */
  distrust?: boolean;
  /**
   * Told (once) when the update has handed over to git — its fetch or clone began (`fetching`) — or waits for
   * another run's (`waiting`): what the caller does on this process from then on no longer holds the update back.
   */
  onUnderway?: (how: 'fetching' | 'waiting') => void;
};

/**
 * The exclusive section (a fetch, a build or a rebuild) each mirror has under way in this process, by repository path,
 * and what it leaves: the refs it fetched, when that fetch began and the HEAD it set (null when it fetched nothing).
 */
type Written = { refs: ReadonlyMap<string, string>; fetchStarted: Date; head: string | null };
const writing = new Map<string, Promise<Written | null>>();

export async function updateMirror(input: MirrorUpdateInput): Promise<MirrorUpdate> {
  const { mirror } = input;
  let told = false;
  const underway = (how: 'fetching' | 'waiting') => {
    if (told) return;
    told = true;
    input.onUnderway?.(how);
  };
  for (;;) {
    // The record, read without the lock, only as a hint: a run that will have to fetch goes straight to the exclusive lock.
    if (input.expected !== null || (await fetchedSince(input))) {
      const shared = await readOnlyWarm(input);
      if (shared !== null) return shared;
    }
    // Another run of this process is writing the mirror: wait for it, then look again, rather than queue for the
    // exclusive lock one by one only to find the fetch shared.
    const running = writing.get(mirror.repo);
    if (running === undefined) break;
    underway('waiting');
    const written = await untilAborted(running.catch(() => null), input.signal);
    // Its fetch began after this run was requested: the refs it left are this run's too, with nothing more to read.
    if (written !== null && input.expected === null && input.distrust !== true && written.fetchStarted.getTime() >= input.since.getTime() && (input.head === null || input.head === written.head)) {
      input.log(UP_TO_DATE_LINES.fresh);
      return { state: 'warm', fetched: false, rebuilt: false, refs: new Map(written.refs) };
    }
  }
  let fetchStarted: Date | null = null;
  const work = withLock(mirror.lockFile, input.signal, async () => {
    // Another process fetched while this run waited for the lock: check and share it under the shared lock instead.
    if (await fetchedSince(input)) return null;
    return updateExclusively(input, (at) => {
      fetchStarted = at;
      underway('fetching');
    });
  });
  const shared = work.then((update): Written | null => (update?.fetched === true && fetchStarted !== null ? { refs: update.refs, fetchStarted, head: input.head } : null));
  writing.set(mirror.repo, shared);
  let exclusive: MirrorUpdate | null;
  try {
    exclusive = await work;
  } finally {
    await shared.catch(() => {});
    if (writing.get(mirror.repo) === shared) writing.delete(mirror.repo);
  }
  if (exclusive !== null) return exclusive;
  return (await readOnlyWarm(input)) ?? withLock(mirror.lockFile, input.signal, () => updateExclusively(input));
}

/**
 * The mirror as it is, when that is all the run needs: this process checked its whole history before, no fetch was
 * cut short, every ref names an object it can read, it matches what the run expects and its HEAD already follows
 * GitLab's. Null when any of that is not so: then the exclusive path decides (and fetches, rebuilds or moves HEAD).
 */
async function readOnlyWarm(input: MirrorUpdateInput): Promise<MirrorUpdate | null> {
  const { mirror } = input;
  if (input.distrust === true || !verified.has(mirror.repo)) return null;
  const lock = await holdShared(mirror.lockFile, input.signal);
  try {
    // Read once for every run of this process that holds the lock with this one.
    const seen = await lock.memo(async () => {
      if (await exists(path.join(mirror.dir, 'fetching'))) return null;
      const head = await readFile(path.join(mirror.repo, 'HEAD'), 'utf8').catch(() => null);
      const checked = await checkMirror(mirror, { full: false });
      if (head === null || checked.refs === null) return null;
      return { head, refs: checked.refs, lastFetchAt: (await readRecord(mirror))?.lastFetchAt ?? null };
    });
    if (seen === null) return null;
    // HEAD must already follow GitLab's (moving it is a write).
    if (input.head !== null && seen.head !== headNaming(input.head)) return null;
    const current = upToDate(input, seen.refs, seen.lastFetchAt);
    if (current === null) return null;
    input.log(UP_TO_DATE_LINES[current]);
    await touchRecord(mirror, input.of, input.now(), null);
    return { state: 'warm', fetched: false, rebuilt: false, refs: new Map(seen.refs) };
  } finally {
    await lock.release();
  }
}

/** Whether a fetch into the mirror began after the run was requested, by the mirror's record. */
async function fetchedSince(input: MirrorUpdateInput): Promise<boolean> {
  if (input.expected !== null || input.distrust === true || !verified.has(input.mirror.repo)) return false;
  return fetchedAfter((await readRecord(input.mirror))?.lastFetchAt ?? null, input.since);
}

/** The exclusive path (the caller holds the mirror's lock): leftovers removed, the mirror checked, built or fetched into. */
async function updateExclusively(input: MirrorUpdateInput, onFetch: (started: Date) => void = () => {}): Promise<MirrorUpdate> {
  const { mirror, log } = input;
  await removeLeftovers(mirror);
  let rebuilt = false;
  let refsBefore: Map<string, string> | null = null;
  if (await exists(path.join(mirror.repo, 'HEAD'))) {
    const interrupted = await exists(path.join(mirror.dir, 'fetching'));
    const full = input.distrust === true || interrupted || !verified.has(mirror.repo);
    const checked = await checkMirror(mirror, { full });
    if (checked.refs === null) {
      log(`Repository cache: the mirror is damaged (${checked.problem}); rebuilding it from GitLab.`);
      await discard(mirror);
      rebuilt = true;
    } else {
      refsBefore = checked.refs;
      if (interrupted) await rm(path.join(mirror.dir, 'fetching'), { force: true });
    }
  } else if (await exists(mirror.repo)) {
    log('Repository cache: the mirror is incomplete; rebuilding it from GitLab.');
    await discard(mirror);
    rebuilt = true;
  }

  if (refsBefore === null) {
    const fetchStarted = input.now();
    onFetch(fetchStarted);
    const refs = await build(mirror, input.fetch, log);
    await followHead(mirror, input.head);
    await touchRecord(mirror, input.of, input.now(), fetchStarted);
    return { state: 'cold', fetched: true, rebuilt, refs };
  }

  const current = upToDate(input, refsBefore, (await readRecord(mirror))?.lastFetchAt ?? null);
  if (current !== null) {
    log(UP_TO_DATE_LINES[current]);
    await followHead(mirror, input.head);
    await touchRecord(mirror, input.of, input.now(), null);
    return { state: 'warm', fetched: false, rebuilt, refs: refsBefore };
  }
  const differing = input.expected === null ? null : differences(refsBefore, input.expected);
  const fetchStarted = input.now();
  const started = Date.now();
  const bytesBefore = await objectBytes(mirror.repo);
  log(
    differing === null
      ? 'Repository cache: warm, fetching what changed at GitLab into the mirror.'
      : `Repository cache: warm, ${differing} ref${differing === 1 ? '' : 's'} differ from GitLab's; fetching into the mirror.`,
  );
  await writeFile(path.join(mirror.dir, 'fetching'), `${process.pid}\n`);
  onFetch(fetchStarted);
  try {
    await input.fetch.fetch({ host: mirror.repo, sandbox: MIRROR_IN_SANDBOX });
  } catch (error) {
    // git's fetch is atomic: a failed one leaves the mirror as it was. A damaged mirror is found by the next check.
    await rm(path.join(mirror.dir, 'fetching'), { force: true });
    throw error;
  }
  await rm(path.join(mirror.dir, 'fetching'), { force: true });
  await followHead(mirror, input.head);
  const refsAfter = await refsOf(mirror.repo);
  const bytes = Math.max(0, (await objectBytes(mirror.repo)) - bytesBefore);
  log(`Repository cache: the fetch brought ${describeRefChanges(refsBefore, refsAfter)}, ${formatBytes(bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  await touchRecord(mirror, input.of, input.now(), fetchStarted);
  return { state: 'warm', fetched: true, rebuilt, refs: refsAfter };
}

/** A first fetch into a new directory, renamed into place once complete: a mirror is never seen half-built. Returns its refs. */
async function build(mirror: Mirror, fetch: MirrorFetch, log: (line: string) => void): Promise<Map<string, string>> {
  const name = `build-${randomBytes(6).toString('hex')}.git`;
  const building = path.join(mirror.dir, name);
  log('Repository cache: cold, building the mirror with a full fetch from GitLab.');
  const started = Date.now();
  let refs: Map<string, string>;
  try {
    if (fetch.clone !== null) {
      await fetch.clone(building, MIRROR_CONFIG);
      // A mirror names no remote: it is fetched by URL. The clone left one behind.
      const removed = await hostGit(building, ['config', '--remove-section', 'remote.origin']);
      if (removed.code !== 0) throw new ForgelinkError('repo_cache_failed', `git config in the repository cache failed: ${firstLine(removed.stderr)}`);
    } else {
      await initMirror(building);
      await fetch.fetch({ host: building, sandbox: `${MIRROR_MOUNT}/${name}` });
    }
    const checked = await checkMirror({ ...mirror, repo: building }, { full: false });
    if (checked.refs === null) throw new ForgelinkError('repo_cache_failed', `The new mirror failed its check: ${checked.problem}.`);
    refs = checked.refs;
    await rename(building, mirror.repo);
  } catch (error) {
    await removeTree(building).catch(() => {});
    throw error;
  }
  verified.add(mirror.repo);
  log(`Repository cache: the mirror holds ${refs.size} ref${refs.size === 1 ? '' : 's'}, ${formatBytes(await objectBytes(mirror.repo))}, fetched in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  return refs;
}

/** What a HEAD file says when it names `branch`. */
function headNaming(branch: string): string {
  return `ref: refs/heads/${branch}\n`;
}

/** Points the mirror's HEAD at GitLab's default branch, when it does not already. */
async function followHead(mirror: Mirror, head: string | null): Promise<void> {
  if (head === null) return;
  if ((await readFile(path.join(mirror.repo, 'HEAD'), 'utf8').catch(() => null)) === headNaming(head)) return;
  await hostGit(mirror.repo, ['symbolic-ref', 'HEAD', `refs/heads/${head}`]);
}

/** Moves the mirror aside and removes it (the caller holds its lock). */
async function discard(mirror: Mirror): Promise<void> {
  const trash = path.join(mirror.dir, `trash-${randomBytes(6).toString('hex')}`);
  await rename(mirror.repo, trash).catch(() => {});
  await removeTree(trash);
  await rm(path.join(mirror.dir, 'fetching'), { force: true });
  verified.delete(mirror.repo);
}

function describeRefChanges(before: Map<string, string>, after: Map<string, string>): string {
  let added = 0;
  let updated = 0;
  let removed = 0;
  for (const [name, sha] of after) {
    const old = before.get(name);
    if (old === undefined) added += 1;
    else if (old !== sha) updated += 1;
  }
  for (const name of before.keys()) if (!after.has(name)) removed += 1;
  return `${updated} updated, ${added} new and ${removed} deleted ref${removed === 1 ? '' : 's'}`;
}

/**
 * Whether a workspace may be made from the mirror while this run's update of it is under way: the mirror exists
 * and this process checked its whole history before. What is made from it is kept only if the update then finds
 * the mirror sound (a rebuilt mirror means a new workspace).
 */
export async function readableDuringUpdate(mirror: Mirror): Promise<boolean> {
  return verified.has(mirror.repo) && (await exists(path.join(mirror.repo, 'HEAD')));
}

/** Whether the mirror can be borrowed from as it is (runs with --depth or --filter use it only then, without fetching). */
export async function usableMirror(mirror: Mirror): Promise<boolean> {
  return (await exists(path.join(mirror.repo, 'HEAD'))) && !(await exists(path.join(mirror.dir, 'fetching'))) && (await mirrorProblem(mirror, { full: false })) === null;
}

/** Marks the mirror used now (its place in the eviction order). */
export async function markUsed(mirror: Mirror, of: MirrorOf, now: Date): Promise<void> {
  await touchRecord(mirror, of, now, null);
}

// ---------------------------------------------------------------------------------------------------------
// Size: least recently used mirrors go first once the cache is past FORGELINK_REPO_CACHE_MAX; a mirror a run is
// using (its `.use` lock held) or fetching into (its `.lock`) is never removed.

export type MirrorListing = {
  key: string;
  baseUrl: string | null;
  projectId: number | null;
  projectPath: string | null;
  sizeBytes: number;
  createdAt: string | null;
  lastUsedAt: string | null;
  lastFetchAt: string | null;
  inUse: boolean;
  path: string;
};

async function keysIn(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isDirectory() && /^[0-9a-f]{32}$/.test(entry.name)).map((entry) => entry.name);
}

async function inUse(mirror: Mirror): Promise<boolean> {
  const lock = await takeLock(mirror.useFile, { shared: false, wait: false });
  if (lock === null) return true;
  await lock.release();
  return false;
}

/**
 * Every mirror in the cache directory, least recently used first. Sizes are the files' sizes, walked in this
 * process. `inUse` is asked of each mirror's use lock unless `options.inUse` is false (then it says false).
 */
export async function listMirrors(root: string, options: { inUse?: boolean } = {}): Promise<MirrorListing[]> {
  const listings: MirrorListing[] = [];
  for (const key of await keysIn(root)) {
    const mirror = mirrorAt(root, key);
    const record = await readRecord(mirror);
    const sizeBytes = await treeBytes(mirror.dir);
    const modified = (await stat(mirror.dir).catch(() => null))?.mtime.toISOString() ?? null;
    listings.push({
      key,
      baseUrl: record?.baseUrl ?? null,
      projectId: record?.projectId ?? null,
      projectPath: record?.projectPath ?? null,
      sizeBytes,
      createdAt: record?.createdAt ?? null,
      lastUsedAt: record?.lastUsedAt ?? modified,
      lastFetchAt: record?.lastFetchAt ?? null,
      inUse: options.inUse === false ? false : await inUse(mirror),
      path: mirror.dir,
    });
  }
  return listings.sort((a, b) => (a.lastUsedAt ?? '').localeCompare(b.lastUsedAt ?? ''));
}

/**
 * Removes least recently used mirrors until the cache is at most `maxBytes` (every idle mirror with 0), skipping
 * `keep` and mirrors in use. Returns what it removed and the size left.
 */
export async function pruneMirrors(root: string, maxBytes: number, keep?: string): Promise<{ removed: MirrorListing[]; totalBytes: number; maxBytes: number }> {
  // Whether a mirror is in use is asked only of those it would remove, by taking their locks.
  const listings = await listMirrors(root, { inUse: false });
  let totalBytes = listings.reduce((sum, listing) => sum + listing.sizeBytes, 0);
  const removed: MirrorListing[] = [];
  for (const listing of listings) {
    if (totalBytes <= maxBytes) break;
    if (listing.key === keep) continue;
    const mirror = mirrorAt(root, listing.key);
    const lock = await takeLock(mirror.lockFile, { shared: false, wait: false });
    if (lock === null) continue;
    try {
      const use = await takeLock(mirror.useFile, { shared: false, wait: false });
      if (use === null) continue;
      try {
        await rm(mirror.recordFile, { force: true });
        await removeTree(mirror.dir);
      } finally {
        await use.release();
      }
    } finally {
      await lock.release();
    }
    verified.delete(mirror.repo);
    totalBytes -= listing.sizeBytes;
    removed.push({ ...listing, inUse: false });
  }
  return { removed, totalBytes, maxBytes };
}
