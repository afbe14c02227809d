import type { Site } from './entities.ts';
import { isDraft } from './merge-requests.ts';
import { canMergeToBranch } from './protected-branches.ts';
import type { FakeIssue, FakeMergeRequest, FakeProject, FakeState, FakeUser } from './state.ts';

/** Entities::UserBasic. */
export function userBasicEntity(site: Site, user: FakeUser) {
  return {
    id: user.id,
    username: user.username,
    name: user.name,
    state: user.state,
    locked: false,
    avatar_url: null,
    web_url: `${site.baseUrl}/${user.username}`,
  };
}

function userById(state: FakeState, site: Site, id: number) {
  const user = state.users.get(id);
  return user ? userBasicEntity(site, user) : null;
}

export function projectWebUrl(site: Site, project: FakeProject): string {
  return `${site.baseUrl}/${project.pathWithNamespace}`;
}

const TIME_STATS = { time_estimate: 0, total_time_spent: 0, human_time_estimate: null, human_total_time_spent: null };
const TASKS = { count: 0, completed_count: 0 };

/** IssuableReferences: `!1` or `#1`, and the full form with the project path. */
function references(project: FakeProject, sign: '!' | '#', iid: number) {
  return { short: `${sign}${iid}`, relative: `${sign}${iid}`, full: `${project.pathWithNamespace}${sign}${iid}` };
}

/** Entities::MergeRequestBasic (EE): what merge request lists return (doc/api/merge_requests.md). */
export function mergeRequestBasicEntity(state: FakeState, site: Site, project: FakeProject, mr: FakeMergeRequest) {
  const assignees = mr.assigneeIds.map((id) => userById(state, site, id)).filter((u) => u !== null);
  const draft = isDraft(mr.title);
  return {
    id: mr.id,
    iid: mr.iid,
    project_id: mr.projectId,
    title: mr.title,
    description: mr.description,
    state: mr.state,
    created_at: mr.createdAt,
    updated_at: mr.updatedAt,
    merged_by: null,
    merge_user: null,
    merged_at: null,
    closed_by: null,
    closed_at: null,
    target_branch: mr.targetBranch,
    source_branch: mr.sourceBranch,
    user_notes_count: 0,
    upvotes: 0,
    downvotes: 0,
    author: userById(state, site, mr.authorId),
    assignees,
    assignee: assignees[0] ?? null,
    reviewers: [],
    source_project_id: mr.projectId,
    target_project_id: mr.projectId,
    labels: [...mr.labels],
    draft,
    imported: false,
    imported_from: 'none',
    work_in_progress: draft,
    milestone: null,
    merge_when_pipeline_succeeds: false,
    merge_status: 'can_be_merged',
    detailed_merge_status: draft ? 'draft_status' : 'mergeable',
    merge_after: null,
    sha: mr.sha,
    merge_commit_sha: null,
    squash_commit_sha: null,
    discussion_locked: null,
    should_remove_source_branch: null,
    force_remove_source_branch: mr.forceRemoveSourceBranch,
    prepared_at: mr.createdAt,
    reference: `!${mr.iid}`,
    references: references(project, '!', mr.iid),
    web_url: `${projectWebUrl(site, project)}/-/merge_requests/${mr.iid}`,
    time_stats: { ...TIME_STATS },
    squash: mr.squash,
    squash_on_merge: mr.squash,
    task_completion_status: { ...TASKS },
    has_conflicts: false,
    blocking_discussions_resolved: true,
    approvals_before_merge: null,
  };
}

/** Entities::MergeRequest: one merge request (create, get), with diff refs and the viewer's `can_merge`. */
export function mergeRequestEntity(
  state: FakeState,
  site: Site,
  project: FakeProject,
  mr: FakeMergeRequest,
  viewer: FakeUser | null,
  viewerLevel: number,
) {
  return {
    ...mergeRequestBasicEntity(state, site, project, mr),
    subscribed: viewer !== null && (viewer.id === mr.authorId || mr.assigneeIds.includes(viewer.id)),
    changes_count: mr.changesCount,
    latest_build_started_at: null,
    latest_build_finished_at: null,
    first_deployed_to_production_at: null,
    pipeline: null,
    head_pipeline: null,
    diff_refs: mr.diffRefs && {
      base_sha: mr.diffRefs.baseSha,
      head_sha: mr.diffRefs.headSha,
      start_sha: mr.diffRefs.startSha,
    },
    merge_error: null,
    first_contribution: false,
    user: { can_merge: viewer !== null && canMergeToBranch(project, viewerLevel, mr.targetBranch) },
  };
}

/** Entities::Issue (EE fields included, as the fake reports an `-ee` version). */
export function issueEntity(state: FakeState, site: Site, project: FakeProject, issue: FakeIssue, viewer: FakeUser | null) {
  const apiUrl = `${site.baseUrl}/api/v4/projects/${project.id}`;
  return {
    id: issue.id,
    iid: issue.iid,
    project_id: issue.projectId,
    title: issue.title,
    description: issue.description,
    state: issue.state,
    created_at: issue.createdAt,
    updated_at: issue.updatedAt,
    closed_at: issue.closedAt,
    closed_by: null,
    labels: [...issue.labels],
    milestone: null,
    assignees: [],
    author: userById(state, site, issue.authorId),
    type: 'ISSUE',
    assignee: null,
    user_notes_count: 0,
    merge_requests_count: 0,
    upvotes: 0,
    downvotes: 0,
    due_date: null,
    confidential: issue.confidential,
    discussion_locked: null,
    issue_type: 'issue',
    web_url: `${projectWebUrl(site, project)}/-/issues/${issue.iid}`,
    time_stats: { ...TIME_STATS },
    task_completion_status: { ...TASKS },
    weight: null,
    blocking_issues_count: 0,
    has_tasks: false,
    _links: {
      self: `${apiUrl}/issues/${issue.iid}`,
      notes: `${apiUrl}/issues/${issue.iid}/notes`,
      award_emoji: `${apiUrl}/issues/${issue.iid}/award_emoji`,
      project: apiUrl,
      closed_as_duplicate_of: null,
    },
    references: references(project, '#', issue.iid),
    severity: 'UNKNOWN',
    subscribed: viewer !== null && viewer.id === issue.authorId,
    moved_to_id: null,
    imported: false,
    imported_from: 'none',
    service_desk_reply_to: null,
    epic_iid: null,
    epic: null,
    iteration: null,
    health_status: null,
  };
}
