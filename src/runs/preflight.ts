import {
  ForgelinkError,
  UpstreamError,
  type Connection,
  type GitLabClient,
  type Warning,
} from '../core/index.ts';
import { cloneUrlOf } from './clone-url.ts';

/** What a run knows about its project before it clones. */
export type PreparedProject = {
  projectId: number | null;
  projectPath: string;
  projectWebUrl: string;
  cloneUrl: string;
  /** Null when it must be learnt from the remote (tokens without API access). */
  baseBranch: string | null;
  /** The project's default branch and protected-branch names (wildcards kept), for the run policy; null and [] without the API. */
  defaultBranch: string | null;
  protectedBranches: string[];
  warnings: Warning[];
};

/** GitLab protected-branch names may hold `*` wildcards (doc/user/project/repository/branches/protected.md). */
export function protectedBranchMatches(pattern: string, branch: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return regex.test(branch);
}

const DEVELOPER = 30;

/** Turns a GitLab refusal during preflight into the run's failure, in words the user can act on. */
export function preflightFailure(error: unknown, connection: Connection, project: string): unknown {
  if (!(error instanceof UpstreamError)) return error;
  switch (error.reason) {
    case 'token_expired':
    case 'token_revoked':
    case 'token_invalid':
      return new ForgelinkError(
        error.code,
        `The token of connection ${connection.id} no longer works: ${error.message} Reconnect with a new token.`,
      );
    case 'not_found':
      return new ForgelinkError('project_not_found', `Project ${project} does not exist on ${connection.host}, or the account cannot see it.`);
    case 'unreachable':
    case 'certificate':
    case 'blocked_address':
      return new ForgelinkError(`gitlab_${error.reason}`, `GitLab at ${connection.host} cannot be reached: ${error.message}`);
    default:
      return new ForgelinkError(error.code, error.message);
  }
}

/**
 * Checks the project before anything is cloned: it exists, the account has Developer access, the branch
 * exists, and whether the default branch is protected. Needs the API (`api` or `read_api`); tokens without
 * it are checked by git itself when it lists the remote.
 */
export async function prepareProject(input: {
  client: GitLabClient;
  connection: Connection;
  project: string;
  branch: string | null;
  canUseApi: boolean;
}): Promise<PreparedProject> {
  const { client, connection, project, branch } = input;
  if (!input.canUseApi) {
    if (/^\d+$/.test(project)) {
      throw new ForgelinkError(
        'project_path_required',
        `This connection's token cannot use the API (no api or read_api scope), so the project must be named by its path (group/app), not by id ${project}.`,
      );
    }
    return {
      projectId: null,
      projectPath: project,
      projectWebUrl: `${connection.baseUrl}/${project}`,
      cloneUrl: cloneUrlOf(connection.baseUrl, project),
      baseBranch: branch,
      defaultBranch: null,
      protectedBranches: [],
      warnings: [],
    };
  }

  const detail = await client.getProject(project);
  if (detail.archived) {
    throw new ForgelinkError('project_archived', `Project ${detail.pathWithNamespace} is archived: nothing can be pushed to it.`);
  }
  if (detail.accessLevel !== null && detail.accessLevel < DEVELOPER) {
    throw new ForgelinkError(
      'insufficient_access',
      `The account ${connection.account ? `@${connection.account.username} ` : ''}has less than Developer access to ${detail.pathWithNamespace}; an agent needs Developer (30) or more to push.`,
    );
  }
  const baseBranch = branch ?? detail.defaultBranch;
  if (baseBranch === null) {
    throw new ForgelinkError('empty_repository', `Project ${detail.pathWithNamespace} has no commits yet, so there is nothing to clone.`);
  }
  if (branch !== null && !(await client.branchExists(detail.id, branch))) {
    throw new ForgelinkError('branch_not_found', `Branch ${branch} does not exist in ${detail.pathWithNamespace}.`);
  }

  const warnings: Warning[] = [];
  const protections = await client.protectedBranches(detail.id);
  if (detail.defaultBranch !== null) {
    if (!protections.some((rule) => protectedBranchMatches(rule.name, detail.defaultBranch as string))) {
      warnings.push({
        code: 'default_branch_unprotected',
        message: `The default branch ${detail.defaultBranch} of ${detail.pathWithNamespace} is not protected: the agent can push to it directly. Protect it so agent changes go through review.`,
      });
    }
  }
  return {
    projectId: detail.id,
    projectPath: detail.pathWithNamespace,
    projectWebUrl: detail.webUrl,
    cloneUrl: cloneUrlOf(connection.baseUrl, detail.pathWithNamespace),
    baseBranch,
    defaultBranch: detail.defaultBranch,
    protectedBranches: protections.map((rule) => rule.name),
    warnings,
  };
}
