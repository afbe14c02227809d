import { accessLevelOf, canSee, type FakeIssue, type FakeProject } from './state.ts';

/**
 * Project abilities as app/policies/project_policy.rb grants them to the roles this fake models.
 * `userId` null is an anonymous request.
 */

function levelOf(project: FakeProject, userId: number | null): number {
  if (userId === null) return 0;
  return accessLevelOf(project, userId) ?? 0;
}

/** `read_project`: public to everyone, internal to anyone signed in, private to members (Guest and up). */
export function canReadProject(project: FakeProject, userId: number | null): boolean {
  if (userId === null) return project.visibility === 'public';
  return canSee(project, userId);
}

/**
 * `read_code` / `download_code`: everyone who can read a public or internal project; in a private
 * project Reporter and up (Guests do not see code of private projects).
 */
export function canReadCode(project: FakeProject, userId: number | null): boolean {
  if (!canReadProject(project, userId)) return false;
  if (project.visibility !== 'private') return true;
  return levelOf(project, userId) >= 20;
}

/** `push_code`: Developer and up, never in an archived project. */
export function canPushCode(project: FakeProject, userId: number | null): boolean {
  return !project.archived && levelOf(project, userId) >= 30;
}

/** `read_merge_request` follows code visibility. */
export function canReadMergeRequests(project: FakeProject, userId: number | null): boolean {
  return canReadCode(project, userId);
}

/** `create_merge_request_from` + `create_merge_request_in` on the same project: Developer and up. */
export function canCreateMergeRequest(project: FakeProject, userId: number): boolean {
  return canPushCode(project, userId);
}

/** `read_issue`: anyone who can read the project. */
export function canReadIssues(project: FakeProject, userId: number | null): boolean {
  return canReadProject(project, userId);
}

/** `create_issue`: anyone signed in who can read the project, unless it is archived (read-only). */
export function canCreateIssue(project: FakeProject, userId: number): boolean {
  return !project.archived && canReadProject(project, userId);
}

/** Confidential issues: their author, and Planner and up (app/policies/issue_policy.rb). */
export function canReadIssue(project: FakeProject, userId: number | null, issue: FakeIssue): boolean {
  if (!issue.confidential) return true;
  if (userId === null) return false;
  return issue.authorId === userId || levelOf(project, userId) >= 15;
}

export function memberLevel(project: FakeProject, userId: number | null): number {
  return levelOf(project, userId);
}
