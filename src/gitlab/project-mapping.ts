import type { GitLabIssue, GitLabMergeRequest, Project, ProjectDetail, ProtectedBranch } from '../core/index.ts';
import type { IssueItem, MergeRequestItem, ProjectDetailItem, ProjectItem, ProtectedBranchItem } from './schema.ts';

/** GitLab's project fields as core names them; the access level is the larger of project and group access. */
export function toProject(item: ProjectItem): Project {
  const levels = [item.permissions?.project_access?.access_level, item.permissions?.group_access?.access_level];
  const known = levels.filter((level): level is number => typeof level === 'number');
  return {
    id: item.id,
    pathWithNamespace: item.path_with_namespace,
    defaultBranch: item.default_branch ?? null,
    webUrl: item.web_url,
    httpUrlToRepo: item.http_url_to_repo,
    accessLevel: known.length > 0 ? Math.max(...known) : null,
  };
}

export function toProjectDetail(item: ProjectDetailItem): ProjectDetail {
  return { ...toProject(item), archived: item.archived };
}

/** Role rules only: a rule naming a user, group or deploy key grants that one principal, not a role. */
export function toProtectedBranch(item: ProtectedBranchItem): ProtectedBranch {
  return {
    name: item.name,
    pushAccessLevels: roleLevels(item.push_access_levels),
    mergeAccessLevels: roleLevels(item.merge_access_levels),
    allowForcePush: item.allow_force_push,
  };
}

function roleLevels(rules: ProtectedBranchItem['push_access_levels']): number[] {
  const levels: number[] = [];
  for (const rule of rules) {
    if (rule.user_id != null || rule.group_id != null || rule.deploy_key_id != null) continue;
    if (typeof rule.access_level === 'number') levels.push(rule.access_level);
  }
  return levels;
}

export function toMergeRequest(item: MergeRequestItem): GitLabMergeRequest {
  return {
    iid: item.iid,
    title: item.title,
    sourceBranch: item.source_branch,
    targetBranch: item.target_branch,
    webUrl: item.web_url,
    authorId: item.author.id,
    createdAt: item.created_at,
  };
}

export function toIssue(item: IssueItem): GitLabIssue {
  return { iid: item.iid, title: item.title, webUrl: item.web_url, authorId: item.author.id, createdAt: item.created_at };
}
