import { git, gitSync, runGit, type Repositories } from './repos.ts';

// Read-only questions the routes and hooks ask a repository, each answered by one or two git calls.

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
  const key = `${repo}:${targetSha}:${sourceSha}`;
  const known = repos.comparisons.get(key) as Comparison | undefined;
  if (known !== undefined) return known;
  const base = await runGit(repos, repo, ['merge-base', targetSha, sourceSha]);
  const baseSha = base.code === 0 ? base.stdout.trim() : null;
  const count = Number.parseInt((await git(repos, repo, ['rev-list', '--count', `${targetSha}..${sourceSha}`])).trim(), 10);
  const changed = baseSha === null ? '' : await git(repos, repo, ['diff', '--name-only', baseSha, sourceSha]);
  let onlyCommit: Comparison['onlyCommit'] = null;
  if (count === 1) {
    const [title = '', body = ''] = (await git(repos, repo, ['log', '-1', '--format=%s%x00%b', sourceSha])).split('\0');
    onlyCommit = { title: commitTitle(title), description: body.trim() };
  }
  const comparison: Comparison = {
    sourceSha,
    targetSha,
    baseSha,
    commitCount: count,
    changesCount: changed.split('\n').filter((l) => l !== '').length,
    onlyCommit,
  };
  repos.comparisons.set(key, comparison);
  return comparison;
}
