/**
 * The run policy's shared vocabulary: what a run may do (`RunPolicy`), what a decision says (`Decision`), and
 * the branch rules that git pushes and the REST endpoints that write to a branch both obey (docs/security.md,
 * "Run policy").
 */

import { policyRefusalMessage } from '../core/index.ts';

/** What one run may do at the GitLab origin; built once when the run starts and never changed. */
export interface RunPolicy {
  projectId: number;
  /** The project's full path as GitLab names it (`group/sub/app`); compared without regard to case, as GitLab routes. */
  projectPath: string;
  defaultBranch: string;
  /** GitLab protected-branch names, including wildcard patterns such as `release/*`. */
  protectedBranches: string[];
  /** Branches that existed when the run started: these are never deleted or rewritten. */
  existingBranches: ReadonlySet<string>;
  /** The branch the run was explicitly started with: pushes to it are allowed even when it is default or protected. */
  allowedBranch?: string;
  allowTags: boolean;
  allowMerge: boolean;
  readOtherProjects: boolean;
  /** The subpath of a GitLab installed under one (`/gitlab`); request paths are matched after it. Empty or absent: none. */
  basePath?: string;
}

/** A refusal names a short stable rule id and says, in one sentence, what was refused and what to do instead. */
export type Decision = { allow: true } | { allow: false; rule: string; message: string };

export const ALLOW: Decision = Object.freeze({ allow: true });

/** Builds a refusal whose message starts with the rule's name, so every place that shows it names the rule. */
export function refuse(rule: string, message: string): Decision {
  return { allow: false, rule, message: policyRefusalMessage(rule, message) };
}

/**
 * A value from the request, made safe to put in a message: control characters (a report-status line ends at a
 * newline) become `?`, and very long values are cut.
 */
export function quote(value: string): string {
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

/**
 * GitLab's protected-branch wildcard: `*` matches any run of characters, slashes included, and the rest matches
 * literally and case-sensitively over the whole name (docs/gitlab.md, "Projects, branches, protection").
 */
export function matchesProtectedPattern(pattern: string, branch: string): boolean {
  if (!pattern.includes('*')) return pattern === branch;
  const parts = pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 's').test(branch);
}

/** The first protected-branch pattern that covers `branch`, or null. */
export function protectingPattern(policy: RunPolicy, branch: string): string | null {
  for (const pattern of policy.protectedBranches) {
    if (matchesProtectedPattern(pattern, branch)) return pattern;
  }
  return null;
}

/**
 * What a write does to a branch: `create` a new one, `update` it to a descendant (fast-forward), `rewrite` it to
 * something that is not a descendant (force), `unverified` update whose ancestry nobody could tell, `delete` it.
 */
export type BranchChange = 'create' | 'update' | 'rewrite' | 'unverified' | 'delete';

/**
 * How a refusal names the write: a way followed by the branch (`push` → "push to main", "push deleting old"), or a
 * phrase that names the branch itself (`deleting the branch main through the API`).
 */
export type BranchVia = string | ((name: string) => string);

/**
 * The branch rules, the same for `git push` and for the REST endpoints that write to a branch: never the default
 * or a protected branch (unless it is the run's explicit branch), never delete or rewrite a branch that existed
 * before the run. `via` says how the write came (`push`, `a commit through the commits API`…) for the message.
 */
export function decideBranchChange(policy: RunPolicy, branch: string, change: BranchChange, via: BranchVia): Decision {
  const name = quote(branch);
  const what = (preposition: string) => (typeof via === 'string' ? `${via} ${preposition} ${name}` : via(name));
  const explicit = policy.allowedBranch !== undefined && policy.allowedBranch === branch;
  if (!explicit && branch === policy.defaultBranch) {
    return refuse(
      'push.default_branch',
      `${what('to')} refused: it is the default branch of ${quote(policy.projectPath)}; push to a new branch and open a merge request instead`,
    );
  }
  const pattern = explicit ? null : protectingPattern(policy, branch);
  if (pattern !== null) {
    const covered = pattern === branch ? 'it is a protected branch' : `it is protected by the pattern ${quote(pattern)}`;
    return refuse('push.protected_branch', `${what('to')} refused: ${covered}; push to a new branch and open a merge request instead`);
  }
  const existed = policy.existingBranches.has(branch);
  if (change === 'delete' && existed) {
    return refuse('push.delete_existing', `${what('deleting')} refused: the branch existed before this run; only branches the run created may be deleted`);
  }
  if (change === 'rewrite' && existed) {
    return refuse(
      'push.force_existing',
      `${what('to')} refused: it rewrites history of a branch that existed before this run (not a fast-forward); push the change on top of the branch, or to a new branch`,
    );
  }
  if (change === 'unverified' && existed) {
    return refuse(
      'push.unverified_update',
      `${what('to')} refused: the branch existed before this run and forgelink could not confirm that the update is a fast-forward; push to a new branch instead`,
    );
  }
  return ALLOW;
}

/**
 * Whether a decoded project reference names the run's project: a numeric id (GitLab reads `05` as 5) or the full
 * path, compared without regard to case as GitLab's routes are. A renamed project's old path is not recognised and
 * counts as another project.
 */
export function isRunProject(policy: RunPolicy, reference: string): boolean {
  if (/^\d+$/.test(reference)) return Number(reference) === policy.projectId;
  return reference.toLowerCase() === policy.projectPath.toLowerCase();
}
