/** What a run produced, worked out from refs, push replies and GitLab's API (docs/contract.md, "A run"). */
import type { GitLabIssue, GitLabMergeRequest } from './types.ts';
import type { OutputBranch, OutputMergeRequest, RunOutputs } from './runs.ts';

/** A branch the run created or moved. */
export type BranchChange = { name: string; sha: string; created: boolean };

/** One merge-request notice GitLab printed in reply to a push. */
export type PushReply = {
  branch: string;
  webUrl: string;
  /** The merge request's iid for `view`; null for `create`, whose URL is the new-MR form. */
  iid: number | null;
  /** `view`: a merge request exists for the branch; `create`: none does yet. */
  kind: 'view' | 'create';
};

const HEADS = 'refs/heads/';

/** Branch name → sha from `git ls-remote` output (`<sha>\t<ref>` lines); tags and other refs are left out. */
export function parseLsRemote(text: string): Map<string, string> {
  const branches = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^([0-9a-f]{40}|[0-9a-f]{64})\t(\S+)$/.exec(line.trim());
    if (!match) continue;
    const [, sha, ref] = match as unknown as [string, string, string];
    if (ref.startsWith(HEADS) && ref.length > HEADS.length) branches.set(ref.slice(HEADS.length), sha);
  }
  return branches;
}

/** Branches that are new or point elsewhere after the run, by name; deleted branches are not outputs. */
export function diffBranches(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): BranchChange[] {
  const changes: BranchChange[] = [];
  for (const [name, sha] of after) {
    const previous = before.get(name);
    if (previous === sha) continue;
    changes.push({ name, sha, created: previous === undefined });
  }
  return changes.sort((a, b) => compareText(a.name, b.name));
}

// CSI sequences (colours, `ESC[K` which git appends to sideband lines on a terminal) and two-character escapes.
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;

/**
 * The merge-request notices in git's output. GitLab sends them as post-receive messages
 * (`Gitlab::InternalPostReceive::Response#add_merge_request_url` in lib/gitlab/internal_post_receive/response.rb;
 * gitlab-shell printed the same text before): `View merge request for <branch>:` or
 * `To create a merge request for <branch>, visit:`, then the URL indented by two spaces; git prefixes each line
 * with `remote: `. Several pushes in one log give several notices, in order.
 */
export function parsePushReplies(text: string): PushReply[] {
  const replies: PushReply[] = [];
  let expecting: { branch: string; kind: PushReply['kind'] } | null = null;
  for (const raw of text.replace(ANSI, '').split(/\r\n|\r|\n/)) {
    const line = raw.replace(/^\s*remote:/, '').trim();
    if (line === '') continue;
    const view = /^View merge request for (\S+):$/.exec(line);
    const create = /^To create a merge request for (\S+), visit:$/.exec(line);
    if (view?.[1] !== undefined) {
      expecting = { branch: view[1], kind: 'view' };
      continue;
    }
    if (create?.[1] !== undefined) {
      expecting = { branch: create[1], kind: 'create' };
      continue;
    }
    if (expecting !== null && /^https?:\/\/\S+$/.test(line)) {
      replies.push({ ...expecting, webUrl: line, iid: expecting.kind === 'view' ? iidOf(line) : null });
    }
    expecting = null;
  }
  return replies;
}

/** GitLab's merge request URL is `<project>/-/merge_requests/<iid>`; before 12.x it had no `/-`. */
function iidOf(url: string): number | null {
  const match = /\/merge_requests\/(\d+)(?:[/?#]|$)/.exec(url);
  return match?.[1] === undefined ? null : Number.parseInt(match[1], 10);
}

export type OutputSources = {
  branches: readonly BranchChange[];
  apiMergeRequests: readonly GitLabMergeRequest[];
  pushMergeRequests: readonly PushReply[];
  issues: readonly GitLabIssue[];
  /** The project's `web_url`, e.g. `https://gitlab.example.com/group/app`. */
  projectWebUrl: string;
};

/**
 * A run's outputs. The API knows a merge request's title and target, so its entry wins over one seen only in a
 * push reply with the same iid; `create` notices are not merge requests and are left out.
 */
export function mergeOutputs(sources: OutputSources): RunOutputs {
  const projectWebUrl = sources.projectWebUrl.replace(/\/+$/, '');
  const branches: OutputBranch[] = sources.branches.map((branch) => ({
    name: branch.name,
    sha: branch.sha,
    created: branch.created,
    webUrl: `${projectWebUrl}/-/tree/${branch.name.split('/').map(encodeURIComponent).join('/')}`,
  }));

  const mergeRequests = new Map<number, OutputMergeRequest>();
  for (const mr of sources.apiMergeRequests) {
    mergeRequests.set(mr.iid, {
      iid: mr.iid,
      title: mr.title,
      sourceBranch: mr.sourceBranch,
      targetBranch: mr.targetBranch,
      webUrl: mr.webUrl,
      detectedBy: 'api',
    });
  }
  for (const reply of sources.pushMergeRequests) {
    if (reply.kind !== 'view' || reply.iid === null || mergeRequests.has(reply.iid)) continue;
    mergeRequests.set(reply.iid, {
      iid: reply.iid,
      title: null,
      sourceBranch: reply.branch,
      targetBranch: null,
      webUrl: reply.webUrl,
      detectedBy: 'push',
    });
  }

  const issues = new Map<number, RunOutputs['issues'][number]>();
  for (const issue of sources.issues) issues.set(issue.iid, { iid: issue.iid, title: issue.title, webUrl: issue.webUrl });

  return {
    branches,
    mergeRequests: [...mergeRequests.values()].sort((a, b) => a.iid - b.iid),
    issues: [...issues.values()].sort((a, b) => a.iid - b.iid),
  };
}

/** Code-unit order: the same on every machine, unlike `localeCompare`. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
