import { memberLevel } from './permissions.ts';
import {
  allowsForcePush,
  canMergeToBranch,
  canPushToBranch,
  isProtected,
} from './protected-branches.ts';
import { branchesContaining, isAncestor, listBranches } from './repo-queries.ts';
import { ZERO_SHA, type Repositories } from './repos.ts';
import type { FakeProject } from './state.ts';

export interface RefChange {
  oldrev: string;
  newrev: string;
  ref: string;
}

/** Gitlab::ChangesList: one `<old> <new> <ref>` per line, as git feeds pre- and post-receive hooks. */
export function parseChanges(text: string): RefChange[] {
  const changes: RefChange[] = [];
  for (const line of text.split('\n')) {
    const [oldrev, newrev, ref] = line.trim().split(/\s+/);
    if (oldrev && newrev && ref) changes.push({ oldrev, newrev, ref });
  }
  return changes;
}

export function branchName(ref: string): string | null {
  return ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
}

/** Gitlab::Checks::BranchCheck::ERROR_MESSAGES (lib/gitlab/checks/branch_check.rb). */
export const BRANCH_CHECK_MESSAGES = {
  deleteDefaultBranch: 'The default branch of a project cannot be deleted.',
  forcePushProtectedBranch: 'You are not allowed to force push code to a protected branch on this project.',
  nonMasterDeleteProtectedBranch:
    'You are not allowed to delete protected branches from this project. Only a project maintainer or owner can delete a protected branch.',
  nonWebDeleteProtectedBranch: 'You can only delete protected branches using the web interface.',
  pushProtectedBranch: 'You are not allowed to push code to protected branches on this project.',
  createProtectedBranch: 'You are not allowed to create protected branches on this project.',
  invalidCommitCreateProtectedBranch:
    'You can only use an existing protected branch ref as the basis of a new protected branch.',
  nonWebCreateProtectedBranch: 'You can only create protected branches using the web interface and API.',
  prohibitedHexBranchName: 'You cannot create a branch with a 40-character hexadecimal branch name.',
} as const;

/** BranchCheck#empty_project_push_message; the members URL is project_project_members_url. */
function emptyProjectPushMessage(project: FakeProject, webUrl: string): string {
  return [
    '',
    `A default branch (e.g. main) does not yet exist for ${project.pathWithNamespace}`,
    'Ask a project Owner or Maintainer to create a default branch:',
    '',
    `  ${webUrl}/-/project_members`,
    '',
    '',
  ].join('\n');
}

export interface ChangeCheckContext {
  repos: Repositories;
  project: FakeProject;
  userId: number;
  webUrl: string;
  /** The push's quarantine (GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES): new objects live there. */
  quarantineEnv: Record<string, string>;
}

/**
 * Gitlab::Checks::BranchCheck#validate! for every branch update, as /internal/allowed runs it from the
 * pre-receive hook. Returns GitLab's message for the first refused change, or null.
 */
export async function checkChanges(context: ChangeCheckContext, changes: readonly RefChange[]): Promise<string | null> {
  const { repos, project, userId, quarantineEnv } = context;
  const repo = repos.ensure(project);
  const level = memberLevel(project, userId);
  const emptyRepo = (await listBranches(repos, repo)).length === 0;

  for (const change of changes) {
    const branch = branchName(change.ref);
    if (branch === null) continue;
    const creation = change.oldrev === ZERO_SHA;
    const deletion = change.newrev === ZERO_SHA;

    if (deletion && branch === project.defaultBranch) return BRANCH_CHECK_MESSAGES.deleteDefaultBranch;
    if (!deletion && /^[0-9a-f]{40}(-\/|\/|$)/i.test(branch)) return BRANCH_CHECK_MESSAGES.prohibitedHexBranchName;

    // ProtectedBranch.protected? counts every branch of an empty repository as protected while the
    // default branch protection applies (GitLab's default: fully protected, Maintainers push first).
    const emptyAndProtected = emptyRepo && project.protectDefaultBranch;
    if (!emptyAndProtected && !isProtected(project, branch)) continue;

    if (!creation && !deletion && !allowsForcePush(project, branch)) {
      const fastForward = await isAncestor(repos, repo, change.oldrev, change.newrev, quarantineEnv);
      if (!fastForward) return BRANCH_CHECK_MESSAGES.forcePushProtectedBranch;
    }

    if (emptyRepo) {
      const allowed = isProtected(project, branch) ? canPushToBranch(project, level, branch) : level >= 40;
      if (!allowed) return emptyProjectPushMessage(project, context.webUrl);
    } else if (creation) {
      if (canPushToBranch(project, level, branch)) continue;
      if (!canMergeToBranch(project, level, branch)) return BRANCH_CHECK_MESSAGES.createProtectedBranch;
      const containing = await branchesContaining(repos, repo, change.newrev, quarantineEnv);
      if (!containing.some((name) => isProtected(project, name))) {
        return BRANCH_CHECK_MESSAGES.invalidCommitCreateProtectedBranch;
      }
      return BRANCH_CHECK_MESSAGES.nonWebCreateProtectedBranch;
    } else if (deletion) {
      if (level < 40) return BRANCH_CHECK_MESSAGES.nonMasterDeleteProtectedBranch;
      return BRANCH_CHECK_MESSAGES.nonWebDeleteProtectedBranch;
    } else if (!canPushToBranch(project, level, branch)) {
      return BRANCH_CHECK_MESSAGES.pushProtectedBranch;
    }
  }
  return null;
}
