import type { Site } from './entities.ts';
import { projectWebUrl } from './issuable-entities.ts';
import { canPushToBranch, developersCan, isProtected } from './protected-branches.ts';
import type { CommitInfo } from './repo-queries.ts';
import type { FakeAccessRule, FakeProject, FakeProtectedBranch } from './state.ts';

/** ProtectedRefAccess human_access_levels. */
const DESCRIPTIONS: Record<number, string> = {
  0: 'No one',
  30: 'Developers + Maintainers',
  40: 'Maintainers',
  60: 'Instance admins',
};

function accessRuleEntity(rule: FakeAccessRule, kind: 'push' | 'merge') {
  return {
    id: rule.id,
    access_level: rule.accessLevel,
    access_level_description: DESCRIPTIONS[rule.accessLevel] ?? String(rule.accessLevel),
    // EE exposes user and group rules; push rules also carry the deploy key column.
    user_id: null,
    group_id: null,
    ...(kind === 'push' ? { deploy_key_id: null } : {}),
  };
}

/** Entities::ProtectedBranch (doc/api/protected_branches.md). */
export function protectedBranchEntity(branch: FakeProtectedBranch) {
  return {
    id: branch.id,
    name: branch.name,
    push_access_levels: branch.pushAccessLevels.map((r) => accessRuleEntity(r, 'push')),
    merge_access_levels: branch.mergeAccessLevels.map((r) => accessRuleEntity(r, 'merge')),
    allow_force_push: branch.allowForcePush,
    code_owner_approval_required: branch.codeOwnerApprovalRequired,
  };
}

/** Entities::Commit as branches show it. */
function commitEntity(site: Site, project: FakeProject, commit: CommitInfo) {
  return {
    id: commit.id,
    short_id: commit.id.slice(0, 8),
    created_at: commit.committedDate,
    parent_ids: [...commit.parentIds],
    title: commit.title,
    message: commit.message,
    author_name: commit.authorName,
    author_email: commit.authorEmail,
    authored_date: commit.authoredDate,
    committer_name: commit.committerName,
    committer_email: commit.committerEmail,
    committed_date: commit.committedDate,
    trailers: {},
    extended_trailers: {},
    web_url: `${projectWebUrl(site, project)}/-/commit/${commit.id}`,
  };
}

/** Entities::Branch (doc/api/branches.md); `can_push` is the viewer's. */
export function branchEntity(
  site: Site,
  project: FakeProject,
  name: string,
  commit: CommitInfo,
  merged: boolean,
  viewerLevel: number,
) {
  return {
    name,
    commit: commitEntity(site, project, commit),
    merged,
    protected: isProtected(project, name),
    developers_can_push: developersCan(project, 'push', name),
    developers_can_merge: developersCan(project, 'merge', name),
    can_push: canPushToBranch(project, viewerLevel, name),
    default: project.defaultBranch === name,
    web_url: `${projectWebUrl(site, project)}/-/tree/${name}`,
  };
}
