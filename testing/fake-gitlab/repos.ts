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

function gitSync(repos: Repositories, repo: string, args: string[], options: { env?: Record<string, string>; input?: string } = {}): string {
  return execFileSync('git', args, {
    cwd: repo,
    env: repos.env({ GIT_DIR: repo, ...options.env }),
    input: options.input ?? '',
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export interface BranchHead {
  name: string;
  sha: string;
}

function parseHeads(output: string): BranchHead[] {
  const heads: BranchHead[] = [];
  for (const line of output.split('\n')) {
    const [sha, name] = line.split(' ');
    if (sha && name) heads.push({ name, sha });
  }
  return heads;
}

const HEADS_FORMAT = ['for-each-ref', '--format=%(objectname) %(refname:strip=2)', 'refs/heads'];

export function listBranchesSync(repos: Repositories, repo: string): BranchHead[] {
  return parseHeads(gitSync(repos, repo, HEADS_FORMAT));
}

export async function listBranches(repos: Repositories, repo: string): Promise<BranchHead[]> {
  return parseHeads(await git(repos, repo, HEADS_FORMAT));
}

/** What Entities::Commit shows about a branch head. */
export interface CommitInfo {
  id: string;
  parentIds: string[];
  title: string;
  message: string;
  authorName: string;
  authorEmail: string;
  authoredDate: string;
  committerName: string;
  committerEmail: string;
  committedDate: string;
}

const COMMIT_FIELDS = [
  '%(refname:strip=2)',
  '%(objectname)',
  '%(parent)',
  '%(authorname)',
  '%(authoremail)',
  '%(authordate:iso-strict)',
  '%(committername)',
  '%(committeremail)',
  '%(committerdate:iso-strict)',
  '%(contents:subject)',
  '%(contents)',
];

/** GitLab renders commit times in the commit's own zone, with milliseconds: `2024-05-01T10:00:00.000+02:00`. */
function gitlabTime(isoStrict: string): string {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(Z|[+-]\d\d:\d\d)$/.exec(isoStrict);
  if (!match) return isoStrict;
  return `${match[1]}.000${match[2] === 'Z' ? '+00:00' : match[2]}`;
}

function unbracket(email: string): string {
  return email.replace(/^<(.*)>$/, '$1');
}

/** Commit#title: the first line, cut at a word to 80 characters plus an ellipsis past 100. */
function commitTitle(subject: string): string {
  if (subject.length < 100) return subject;
  const cut = subject.slice(0, 80);
  const space = cut.lastIndexOf(' ');
  return `${space > 0 ? cut.slice(0, space) : cut}…`;
}

/** Every branch with its head commit, in one git call. */
export async function branchCommits(repos: Repositories, repo: string): Promise<Map<string, CommitInfo>> {
  const output = await git(repos, repo, ['for-each-ref', `--format=${COMMIT_FIELDS.join('%00')}%01`, 'refs/heads']);
  const result = new Map<string, CommitInfo>();
  for (const record of output.split('\x01')) {
    const fields = record.replace(/^\n/, '').split('\0');
    if (fields.length < COMMIT_FIELDS.length) continue;
    const [name, id, parents, authorName, authorEmail, authoredDate, committerName, committerEmail, committedDate, subject, message] =
      fields as [string, string, string, string, string, string, string, string, string, string, string];
    result.set(name, {
      id,
      parentIds: parents.split(' ').filter((p) => p !== ''),
      title: commitTitle(subject),
      message,
      authorName,
      authorEmail: unbracket(authorEmail),
      authoredDate: gitlabTime(authoredDate),
      committerName,
      committerEmail: unbracket(committerEmail),
      committedDate: gitlabTime(committedDate),
    });
  }
  return result;
}

/** Branches whose head is reachable from `into` (`git branch --merged`), `into` itself left out. */
export async function mergedBranches(repos: Repositories, repo: string, into: string): Promise<Set<string>> {
  const result = await runGit(repos, repo, ['for-each-ref', '--format=%(refname:strip=2)', `--merged=refs/heads/${into}`, 'refs/heads']);
  if (result.code !== 0) return new Set();
  return new Set(result.stdout.split('\n').filter((name) => name !== '' && name !== into));
}

/** True when `ancestor` is reachable from `descendant`; `env` may point at a push's quarantine. */
export async function isAncestor(
  repos: Repositories,
  repo: string,
  ancestor: string,
  descendant: string,
  env: Record<string, string> = {},
): Promise<boolean> {
  const result = await runGit(repos, repo, ['merge-base', '--is-ancestor', ancestor, descendant], { env });
  return result.code === 0;
}

/** Names of the branches containing `sha` (Repository#branch_names_contains_sha). */
export async function branchesContaining(
  repos: Repositories,
  repo: string,
  sha: string,
  env: Record<string, string> = {},
): Promise<string[]> {
  const result = await runGit(repos, repo, ['for-each-ref', '--format=%(refname:strip=2)', `--contains=${sha}`, 'refs/heads'], { env });
  return result.code === 0 ? result.stdout.split('\n').filter((n) => n !== '') : [];
}

/** What a merge request needs from comparing its branches (MergeRequests::BuildService, merge_request_diff). */
export interface Comparison {
  sourceSha: string;
  targetSha: string | null;
  baseSha: string | null;
  commitCount: number;
  changesCount: number;
  /** Subject and body of the only commit, when exactly one commit separates the branches. */
  onlyCommit: { title: string; description: string } | null;
}

async function revParse(repos: Repositories, repo: string, ref: string): Promise<string | null> {
  const result = await runGit(repos, repo, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  return result.code === 0 ? result.stdout.trim() : null;
}

/** Compares `source` with `target`; null when the source branch does not exist. */
export async function compareBranches(
  repos: Repositories,
  repo: string,
  source: string,
  target: string,
): Promise<Comparison | null> {
  const sourceSha = await revParse(repos, repo, `refs/heads/${source}`);
  if (sourceSha === null) return null;
  const targetSha = await revParse(repos, repo, `refs/heads/${target}`);
  if (targetSha === null) {
    return { sourceSha, targetSha, baseSha: null, commitCount: 0, changesCount: 0, onlyCommit: null };
  }
  const base = await runGit(repos, repo, ['merge-base', targetSha, sourceSha]);
  const baseSha = base.code === 0 ? base.stdout.trim() : null;
  const count = Number.parseInt((await git(repos, repo, ['rev-list', '--count', `${targetSha}..${sourceSha}`])).trim(), 10);
  const changed = baseSha === null ? '' : await git(repos, repo, ['diff', '--name-only', baseSha, sourceSha]);
  let onlyCommit: Comparison['onlyCommit'] = null;
  if (count === 1) {
    const [title = '', body = ''] = (await git(repos, repo, ['log', '-1', '--format=%s%x00%b', sourceSha])).split('\0');
    onlyCommit = { title: commitTitle(title), description: body.trim() };
  }
  return {
    sourceSha,
    targetSha,
    baseSha,
    commitCount: count,
    changesCount: changed.split('\n').filter((l) => l !== '').length,
    onlyCommit,
  };
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
