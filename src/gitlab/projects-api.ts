import type { z } from 'zod';
import { UpstreamError, type GitLabProjectsApi, type ProjectDetail } from '../core/index.ts';
import type { GitLabHttp, Query } from './http.ts';
import { toIssue, toMergeRequest, toProjectDetail, toProtectedBranch } from './project-mapping.ts';
import {
  BranchItem,
  IssueItem,
  MergeRequestItem,
  ProjectDetailItem,
  ProjectIdentity,
  ProtectedBranchItem,
} from './schema.ts';

const PER_PAGE = 100;

/** What runs need from a project: lookup, branch protection, and what an account created in it. */
export function createProjectsApi(http: GitLabHttp): GitLabProjectsApi {
  async function projectById(id: number, named: string): Promise<ProjectDetail> {
    try {
      return toProjectDetail(await http.get(`/projects/${id}`, ProjectDetailItem));
    } catch (error) {
      throw is404(error) ? projectNotFound(named, error) : error;
    }
  }

  /**
   * The project's id found by listing, for when `GET /projects/group%2Fapp` 404s: a reverse proxy that
   * decodes `%2F` turns the path into extra segments GitLab has no route for (docs/gitlab.md; GitLab docs:
   * api/rest/index.md, "Namespaced path encoding"; gitlab-org/gitlab#199717: Apache without
   * `AllowEncodedSlashes NoDecode` answers with a 404 page, while lookups by id and by search work).
   * Searching for the last segment among the account's projects and matching the full path exactly finds it
   * without a slash in the URL path. GitLab resolves paths case-insensitively, so the match is too.
   */
  async function findIdByListing(path: string): Promise<number | null> {
    const wanted = path.toLowerCase();
    const lastSegment = path.slice(path.lastIndexOf('/') + 1);
    const query = { search: lastSegment, membership: true, simple: true, per_page: PER_PAGE, order_by: 'id', sort: 'asc' };
    for await (const item of http.paginate('/projects', query, ProjectIdentity)) {
      if (item.path_with_namespace.toLowerCase() === wanted) return item.id;
    }
    return null;
  }

  /** Every page, never just the first (docs/gitlab.md, "Paging": a client that stops at page one sees 20 results). */
  async function listAll<T, R>(path: string, query: Query, schema: z.ZodType<T>, map: (item: T) => R): Promise<R[]> {
    const out: R[] = [];
    for await (const item of http.paginate(path, { ...query, per_page: PER_PAGE }, schema)) out.push(map(item));
    return out;
  }

  return {
    async getProject(idOrPath) {
      const id = numericId(idOrPath);
      if (id !== null) return projectById(id, `with id ${id}`);
      const path = String(idOrPath).trim().replace(/^\/+|\/+$/g, '');
      const named = `"${path}"`;
      try {
        return toProjectDetail(await http.get(`/projects/${encodeURIComponent(path)}`, ProjectDetailItem));
      } catch (error) {
        // Any 404 — GitLab's JSON one, or a proxy's HTML page — may be the decoded-`%2F` problem.
        if (!is404(error) || !path.includes('/')) throw is404(error) ? projectNotFound(named, error) : error;
        const found = await findIdByListing(path);
        if (found === null) throw projectNotFound(named, error);
        return projectById(found, named);
      }
    },

    async protectedBranches(projectId) {
      return listAll(`/projects/${projectId}/protected_branches`, {}, ProtectedBranchItem, toProtectedBranch);
    },

    async branchExists(projectId, branch) {
      try {
        await http.get(`/projects/${projectId}/repository/branches/${encodeURIComponent(branch)}`, BranchItem);
        return true;
      } catch (error) {
        if (!is404(error)) throw error;
      }
      if (!branch.includes('/')) return false;
      // The same `%2F` decoding breaks `feature%2Fx`; the list endpoint carries the name in the query
      // instead. `^` anchors GitLab's branch search at the start (GitLab docs: api/branches.md).
      try {
        const query = { search: `^${branch}`, per_page: PER_PAGE };
        for await (const item of http.paginate(`/projects/${projectId}/repository/branches`, query, BranchItem)) {
          if (item.name === branch) return true;
        }
        return false;
      } catch (error) {
        if (is404(error)) return false;
        throw error;
      }
    },

    async mergeRequests(projectId, filter) {
      return listAll(`/projects/${projectId}/merge_requests`, createdBy(filter), MergeRequestItem, toMergeRequest);
    },

    async issues(projectId, filter) {
      return listAll(`/projects/${projectId}/issues`, createdBy(filter), IssueItem, toIssue);
    },
  };
}

/**
 * GitLab docs (api/merge_requests.md, "List project merge requests"; api/issues.md, "List project issues"):
 * `created_after` is an ISO 8601 time and inclusive; `state=all` keeps what the agent opened and closed again;
 * `scope=all` because the non-project variants of these endpoints default to `created_by_me`.
 */
function createdBy(filter: { authorId: number; createdAfter: string }): Query {
  return {
    author_id: filter.authorId,
    created_after: filter.createdAfter,
    scope: 'all',
    state: 'all',
    order_by: 'created_at',
    sort: 'asc',
  };
}

function numericId(idOrPath: string | number): number | null {
  if (typeof idOrPath === 'number') return idOrPath;
  const trimmed = idOrPath.trim();
  return /^\d+$/.test(trimmed) ? Number.parseInt(trimmed, 10) : null;
}

function is404(error: unknown): error is UpstreamError {
  return error instanceof UpstreamError && error.status === 404;
}

function projectNotFound(named: string, cause: unknown): UpstreamError {
  return new UpstreamError(
    'not_found',
    `GitLab has no project ${named} that this account can see. Check the path or id, and that the account is a ` +
      'member of the project.',
    { status: 404, cause },
  );
}
