import { compareBranches, type Comparison } from './repo-queries.ts';
import type { Repositories } from './repos.ts';
import { isoNow, type FakeMergeRequest, type FakeProject, type FakeState } from './state.ts';

export interface MergeRequestDeps {
  state: FakeState;
  repos: Repositories;
}

export interface NewMergeRequest {
  authorId: number;
  sourceBranch: string;
  targetBranch: string;
  /** Required through the API; push options may leave it out and get BuildService's title. */
  title?: string;
  description?: string | null;
  labels?: string[];
  assigneeIds?: number[];
  /** Default: the project's "delete source branch" setting, which GitLab turns on for new projects. */
  removeSourceBranch?: boolean;
  squash?: boolean;
  /** merge_request.draft: prefix the title with `Draft: `. */
  draft?: boolean;
}

/** Why a merge request was not created, as the model's validations and the API's error mapping put it. */
export type MergeRequestRefusal =
  /** errors[:branch_conflict] → 422 (lib/api/helpers/merge_requests_helpers.rb, UNPROCESSABLE_ERROR_KEYS). */
  | { kind: 'unprocessable'; messages: string[] }
  /** errors[:validate_branches] → 409. */
  | { kind: 'conflict'; messages: string[] }
  /** Attribute validation errors → 400 `{"message":{"field":["…"]}}`. */
  | { kind: 'invalid'; errors: Record<string, string[]> };

export type CreateOutcome = { ok: true; mergeRequest: FakeMergeRequest } | ({ ok: false } & MergeRequestRefusal);

/** MergeRequest::DRAFT_REGEX from Gitlab::Regex.merge_request_draft: `[draft]`, `(draft)` or `draft:`, any case. */
const DRAFT = /^\s*(\[draft\]|\(draft\)|draft:)+\s*/i;

export function isDraft(title: string): boolean {
  return DRAFT.test(title);
}

function draftTitle(title: string): string {
  return `Draft: ${title.replace(DRAFT, '')}`;
}

/**
 * `source_branch.titleize.humanize` (MergeRequests::BuildService): `fix-login_bug` → `Fix login bug`.
 * Rails' underscore turns dashes and camel case into underscores; humanize turns them into spaces,
 * lower-cases everything and capitalises the first letter.
 */
export function titleFromBranch(branch: string): string {
  const underscored = branch
    .replace(/([A-Z\d]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/([a-z\d])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();
  const words = underscored.replace(/_id$/, '').replace(/^_+/, '').replace(/_/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function openMergeRequestFor(state: FakeState, projectId: number, sourceBranch: string): FakeMergeRequest | undefined {
  return state.mergeRequests.find((mr) => mr.projectId === projectId && mr.state === 'opened' && mr.sourceBranch === sourceBranch);
}

export function mergeRequestsOf(state: FakeState, projectId: number): FakeMergeRequest[] {
  return state.mergeRequests.filter((mr) => mr.projectId === projectId);
}

function applyComparison(mr: FakeMergeRequest, comparison: Comparison): void {
  mr.sha = comparison.sourceSha;
  mr.diffRefs =
    comparison.targetSha === null || comparison.baseSha === null
      ? null
      : { baseSha: comparison.baseSha, headSha: comparison.sourceSha, startSha: comparison.targetSha };
  mr.changesCount = comparison.targetSha === null ? null : String(comparison.changesCount);
}

/**
 * MergeRequests::CreateService with the model's validations: same branch (422), another open merge
 * request for the same source and target (409, `Another open merge request already exists for this
 * source branch: !N`), then attribute errors (400): a blank title, and a source branch that does not
 * exist (GitLab 19 refuses those with `{"message":{"source_branch":["does not exist"]}}`).
 */
export async function createMergeRequest(
  deps: MergeRequestDeps,
  project: FakeProject,
  input: NewMergeRequest,
): Promise<CreateOutcome> {
  const { state } = deps;
  if (input.sourceBranch === input.targetBranch) {
    return { ok: false, kind: 'unprocessable', messages: ["You can't use same project/branch for source and target"] };
  }
  const repo = deps.repos.ensure(project);
  const comparison = await compareBranches(deps.repos, repo, input.sourceBranch, input.targetBranch);

  // Decided after the last await, so two requests racing for the same branch cannot both pass.
  const conflict = state.mergeRequests.find(
    (mr) =>
      mr.projectId === project.id &&
      mr.state === 'opened' &&
      mr.sourceBranch === input.sourceBranch &&
      mr.targetBranch === input.targetBranch,
  );
  if (conflict) {
    return { ok: false, kind: 'conflict', messages: [`Another open merge request already exists for this source branch: !${conflict.iid}`] };
  }
  const errors: Record<string, string[]> = {};
  let title = input.title;
  let description = input.description ?? null;
  if (title === undefined && comparison?.onlyCommit) {
    title = comparison.onlyCommit.title;
    description ??= comparison.onlyCommit.description || null;
  }
  title ??= titleFromBranch(input.sourceBranch);
  if (title.trim() === '') errors.title = ["can't be blank"];
  const lagging = state.faults.sourceBranchLag.remaining > 0;
  if (comparison === null || lagging) {
    if (lagging) state.faults.sourceBranchLag.remaining -= 1;
    errors.source_branch = ['does not exist'];
  }
  if (Object.keys(errors).length > 0 || comparison === null) {
    return { ok: false, kind: 'invalid', errors };
  }
  // BuildService marks a merge request without commits as a draft.
  if (input.draft || (input.title === undefined && comparison.commitCount === 0)) title = draftTitle(title);

  const now = isoNow(state);
  const mergeRequest: FakeMergeRequest = {
    id: state.nextId.mergeRequest++,
    iid: project.nextIid.mergeRequest++,
    projectId: project.id,
    title,
    description,
    state: 'opened',
    sourceBranch: input.sourceBranch,
    targetBranch: input.targetBranch,
    authorId: input.authorId,
    assigneeIds: [...(input.assigneeIds ?? [])],
    labels: [...new Set(input.labels ?? [])].sort(),
    forceRemoveSourceBranch: input.removeSourceBranch ?? true,
    squash: input.squash ?? false,
    sha: null,
    diffRefs: null,
    changesCount: null,
    createdAt: now,
    updatedAt: now,
  };
  applyComparison(mergeRequest, comparison);
  state.mergeRequests.push(mergeRequest);
  project.lastActivityAt = now;
  return { ok: true, mergeRequest };
}

export interface MergeRequestChanges {
  title?: string;
  description?: string;
  targetBranch?: string;
  draft?: boolean;
  addLabels?: string[];
  removeLabels?: string[];
  removeSourceBranch?: boolean;
}

/** MergeRequests::UpdateService for what push options can change; returns validation messages, if any. */
export function updateMergeRequest(state: FakeState, mr: FakeMergeRequest, changes: MergeRequestChanges): string[] {
  if (changes.targetBranch !== undefined && changes.targetBranch === mr.sourceBranch) {
    return ["Branch conflict You can't use same project/branch for source and target"];
  }
  if (changes.title !== undefined) mr.title = changes.title;
  if (changes.draft) mr.title = draftTitle(mr.title);
  if (changes.description !== undefined) mr.description = changes.description;
  if (changes.targetBranch !== undefined) mr.targetBranch = changes.targetBranch;
  if (changes.removeSourceBranch !== undefined) mr.forceRemoveSourceBranch = changes.removeSourceBranch;
  const labels = new Set(mr.labels);
  for (const label of changes.addLabels ?? []) labels.add(label);
  for (const label of changes.removeLabels ?? []) labels.delete(label);
  mr.labels = [...labels].sort();
  mr.updatedAt = isoNow(state);
  return [];
}

/**
 * MergeRequests::RefreshService after a push: open merge requests whose source or target branch moved
 * get the new head SHA and diff refs.
 */
export async function refreshMergeRequests(
  deps: MergeRequestDeps,
  project: FakeProject,
  movedBranches: readonly string[],
): Promise<void> {
  const repo = deps.repos.ensure(project);
  for (const mr of mergeRequestsOf(deps.state, project.id)) {
    if (mr.state !== 'opened') continue;
    if (!movedBranches.includes(mr.sourceBranch) && !movedBranches.includes(mr.targetBranch)) continue;
    const comparison = await compareBranches(deps.repos, repo, mr.sourceBranch, mr.targetBranch);
    if (comparison === null) continue;
    applyComparison(mr, comparison);
    mr.updatedAt = isoNow(deps.state);
  }
}
