import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import type { FakeProject } from './state.ts';

export const ZERO_SHA = '0000000000000000000000000000000000000000';

/** The bare repositories of one fake, created on first use under `root`. */
export interface Repositories {
  readonly root: string;
  /** Where the project's repository lives (GitLab's hashed storage layout), whether created yet or not. */
  pathOf(project: FakeProject): string;
  /** Creates the bare repository on first use (initial commit unless the project is empty); returns its path. */
  ensure(project: FakeProject): string;
  /** Environment for git commands run by the fake: no user or system configuration leaks in. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** What git said about a pair of commits, by `repo:target:source`: it never changes, so it is asked once. */
  readonly comparisons: Map<string, unknown>;
}

export interface RepositoriesOptions {
  /** Directory holding `@hashed/…` repositories. */
  root: string;
  /** Shared hooks directory every repository points `core.hooksPath` at. */
  hooksDir: string;
  /** HOME for git processes, so no ~/.gitconfig is read. */
  home: string;
}

const INITIAL_AUTHOR = { name: 'Administrator', email: 'admin@example.com' };

/** A loose object: zlib("<type> <size>\0<content>") stored under its SHA-1. */
function writeObject(repo: string, type: 'blob' | 'tree' | 'commit', content: Buffer): string {
  const full = Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]);
  const sha = createHash('sha1').update(full).digest('hex');
  const dir = join(repo, 'objects', sha.slice(0, 2));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, sha.slice(2)), deflateSync(full));
  return sha;
}

/**
 * What "Initialize repository with a README" gives a new GitLab project: one commit adding README.md.
 * Written as loose objects without spawning git, so creating thousands of projects stays cheap.
 */
function writeInitialCommit(repo: string, project: FakeProject): string {
  const readme = `# ${project.name}\n${project.description ? `\n${project.description}\n` : ''}`;
  const blob = writeObject(repo, 'blob', Buffer.from(readme));
  const tree = writeObject(repo, 'tree', Buffer.concat([Buffer.from('100644 README.md\0'), Buffer.from(blob, 'hex')]));
  const when = `${Math.floor(Date.parse(project.createdAt) / 1000)} +0000`;
  const who = `${INITIAL_AUTHOR.name} <${INITIAL_AUTHOR.email}>`;
  const commit = `tree ${tree}\nauthor ${who} ${when}\ncommitter ${who} ${when}\n\nInitial commit\n`;
  return writeObject(repo, 'commit', Buffer.from(commit));
}

/**
 * Gitaly's repository configuration that matters here: push options are advertised (GitLab's
 * merge_request.* options need them), partial clone filters are allowed, and hooks come from the
 * fake's shared hooks directory (Gitaly also runs its own hooks, not the repository's).
 */
function configText(hooksDir: string): string {
  const quoted = hooksDir.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return [
    '[core]',
    '\trepositoryformatversion = 0',
    '\tfilemode = true',
    '\tbare = true',
    `\thooksPath = "${quoted}"`,
    '[receive]',
    '\tadvertisePushOptions = true',
    '[uploadpack]',
    '\tallowFilter = true',
    '',
  ].join('\n');
}

export function createRepositories(options: RepositoriesOptions): Repositories {
  const created = new Set<number>();
  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: options.home,
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    ...extra,
  });
  const pathOf = (project: FakeProject): string => {
    const hash = createHash('sha256').update(String(project.id)).digest('hex');
    return join(options.root, '@hashed', hash.slice(0, 2), hash.slice(2, 4), `${hash}.git`);
  };
  return {
    root: options.root,
    comparisons: new Map(),
    pathOf,
    env,
    ensure(project) {
      const repo = pathOf(project);
      if (created.has(project.id) || existsSync(join(repo, 'HEAD'))) {
        created.add(project.id);
        return repo;
      }
      for (const dir of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags']) {
        mkdirSync(join(repo, dir), { recursive: true });
      }
      writeFileSync(join(repo, 'config'), configText(options.hooksDir));
      writeFileSync(join(repo, 'HEAD'), `ref: refs/heads/${project.defaultBranch ?? 'main'}\n`);
      if (project.defaultBranch !== null) {
        const commit = writeInitialCommit(repo, project);
        for (const branch of new Set([project.defaultBranch, ...project.initialBranches])) {
          const ref = join(repo, 'refs', 'heads', ...branch.split('/'));
          mkdirSync(join(ref, '..'), { recursive: true });
          writeFileSync(ref, `${commit}\n`);
        }
      }
      created.add(project.id);
      return repo;
    },
  };
}

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs git in `repo`; resolves with the exit code instead of rejecting on failure. */
export function runGit(
  repos: Repositories,
  repo: string,
  args: string[],
  options: { env?: Record<string, string>; input?: string } = {},
): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      { cwd: repo, env: repos.env({ GIT_DIR: repo, ...options.env }), maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error);
          return;
        }
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
    // git may exit before reading its input (e.g. an unknown revision); that is not our error.
    child.stdin?.on('error', () => {});
    if (options.input === undefined) child.stdin?.end();
    else child.stdin?.end(options.input);
  });
}

/** Runs git and returns stdout; a non-zero exit is an error. */
export async function git(
  repos: Repositories,
  repo: string,
  args: string[],
  options: { env?: Record<string, string>; input?: string } = {},
): Promise<string> {
  const result = await runGit(repos, repo, args, options);
  if (result.code !== 0) throw new Error(`git ${args[0]} failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

export function gitSync(repos: Repositories, repo: string, args: string[], options: { env?: Record<string, string>; input?: string } = {}): string {
  return execFileSync('git', args, {
    cwd: repo,
    env: repos.env({ GIT_DIR: repo, ...options.env }),
    input: options.input ?? '',
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export interface FileCommit {
  branch: string;
  path: string;
  content: string;
  message?: string;
  authorName?: string;
  authorEmail?: string;
  /** Where a new branch starts; default: the project's default branch (or nothing, in an empty repository). */
  startBranch?: string;
}

/**
 * Commits one file to `branch` with git plumbing (a throwaway index), creating the branch when it
 * does not exist. Hooks do not run: this is a fixture, not a push. Returns the new commit's SHA.
 */
export function commitFileSync(repos: Repositories, repo: string, change: FileCommit, defaultBranch: string | null): string {
  const resolve = (ref: string): string | null => {
    try {
      return gitSync(repos, repo, ['rev-parse', '--verify', '--quiet', `refs/heads/${ref}^{commit}`]).trim() || null;
    } catch {
      return null;
    }
  };
  const current = resolve(change.branch);
  const startRef = change.startBranch ?? defaultBranch;
  const parent = current ?? (startRef === null ? null : resolve(startRef));
  const index = join(repo, `index.fake-${randomBytes(6).toString('hex')}`);
  const indexEnv = { GIT_INDEX_FILE: index };
  try {
    if (parent !== null) gitSync(repos, repo, ['read-tree', parent], { env: indexEnv });
    const blob = gitSync(repos, repo, ['hash-object', '-w', '--stdin'], { input: change.content }).trim();
    gitSync(repos, repo, ['update-index', '--add', '--cacheinfo', `100644,${blob},${change.path}`], { env: indexEnv });
    const tree = gitSync(repos, repo, ['write-tree'], { env: indexEnv }).trim();
    const name = change.authorName ?? INITIAL_AUTHOR.name;
    const email = change.authorEmail ?? INITIAL_AUTHOR.email;
    const identity = { GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_NAME: name, GIT_COMMITTER_EMAIL: email };
    const args = ['commit-tree', tree, ...(parent === null ? [] : ['-p', parent])];
    const commit = gitSync(repos, repo, args, { env: identity, input: `${change.message ?? `Update ${change.path}`}\n` }).trim();
    gitSync(repos, repo, ['update-ref', `refs/heads/${change.branch}`, commit, current ?? ZERO_SHA]);
    return commit;
  } finally {
    rmSync(index, { force: true });
  }
}
