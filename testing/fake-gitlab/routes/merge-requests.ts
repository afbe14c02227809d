import type { Context, Hono } from 'hono';
import type { AppEnv, Deps } from '../context.ts';
import { mergeRequestBasicEntity, mergeRequestEntity } from '../issuable-entities.ts';
import { createMergeRequest, isDraft, mergeRequestsOf } from '../merge-requests.ts';
import { offsetPage, readPageParams } from '../paging.ts';
import { ParamReader, readParams } from '../params.ts';
import { canCreateMergeRequest, canReadMergeRequests, memberLevel } from '../permissions.ts';
import type { FakeMergeRequest, FakeProject } from '../state.ts';
import { issuableMatcher, sortIssuables } from './issuable-filters.ts';
import { forbidden, projectFor, recordNotFound, viewerOf, writerOf, type Viewer } from './project-scope.ts';

const STATES = ['opened', 'closed', 'locked', 'merged', 'all'] as const;
const ORDER_BY = ['created_at', 'updated_at', 'title', 'merged_at', 'label_priority', 'milestone_due', 'popularity', 'priority'] as const;
const SCOPES = ['created-by-me', 'assigned-to-me', 'created_by_me', 'assigned_to_me', 'reviews_for_me', 'all'] as const;

/** The project and viewer for a read, or the error GitLab answers (401/403 scope, 404 project, 403 ability). */
function readContext(c: Context<AppEnv>, deps: Deps): { project: FakeProject; viewer: Viewer } | Response {
  const viewer = viewerOf(c);
  if (viewer instanceof Response) return viewer;
  const project = projectFor(c, deps, viewer);
  if (project instanceof Response) return project;
  if (!canReadMergeRequests(project, viewer?.user.id ?? null)) return forbidden(c);
  return { project, viewer };
}

function single(deps: Deps, project: FakeProject, mr: FakeMergeRequest, viewer: Viewer) {
  const level = memberLevel(project, viewer?.user.id ?? null);
  return mergeRequestEntity(deps.state, deps.site, project, mr, viewer?.user ?? null, level);
}

/**
 * doc/api/merge_requests.md: create, list (with `state`, `author_id`, `created_after`, `source_branch`
 * and friends, offset paging) and get one project merge request.
 */
export function registerMergeRequestRoutes(api: Hono<AppEnv>, deps: Deps): void {
  api.post('/projects/:id/merge_requests', async (c) => {
    const writer = writerOf(c);
    if (writer instanceof Response) return writer;
    const project = projectFor(c, deps, writer);
    if (project instanceof Response) return project;
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;

    // lib/api/merge_requests.rb declares title, source_branch and target_branch in this order.
    const params = new ParamReader(raw);
    const title = params.requiredString('title');
    const sourceBranch = params.requiredString('source_branch');
    const targetBranch = params.requiredString('target_branch');
    const description = params.optionalString('description');
    const labels = params.optionalLabels('labels');
    const removeSourceBranch = params.optionalBoolean('remove_source_branch');
    const squash = params.optionalBoolean('squash');
    const assigneeIds = params.optionalIntegers('assignee_ids');
    const assigneeId = params.optionalInteger('assignee_id');
    const invalid = params.response(c);
    if (invalid) return invalid;
    if (!canCreateMergeRequest(project, writer.user.id)) return forbidden(c);

    const outcome = await createMergeRequest(deps, project, {
      authorId: writer.user.id,
      title,
      sourceBranch,
      targetBranch,
      description: description ?? null,
      labels: labels ?? [],
      assigneeIds: (assigneeIds ?? (assigneeId === undefined ? [] : [assigneeId])).filter((id) => deps.state.users.has(id)),
      ...(removeSourceBranch === undefined ? {} : { removeSourceBranch }),
      ...(squash === undefined ? {} : { squash }),
    });
    if (outcome.ok) return c.json(single(deps, project, outcome.mergeRequest, writer), 201);
    switch (outcome.kind) {
      case 'unprocessable':
        return c.json({ message: outcome.messages }, 422);
      case 'conflict':
        return c.json({ message: outcome.messages }, 409);
      case 'invalid':
        return c.json({ message: outcome.errors }, 400);
    }
  });

  api.get('/projects/:id/merge_requests', async (c) => {
    const context = readContext(c, deps);
    if (context instanceof Response) return context;
    const { project } = context;
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;
    const params = new ParamReader(raw);
    const state = params.oneOf('state', STATES, 'all');
    const orderBy = params.oneOf('order_by', ORDER_BY, 'created_at');
    const sort = params.oneOf('sort', ['asc', 'desc'] as const, 'desc');
    params.oneOf('scope', SCOPES, 'all');
    const simple = params.optionalOneOf('view', ['simple'] as const) === 'simple';
    const authorId = params.optionalInteger('author_id');
    const authorUsername = params.optionalString('author_username');
    const createdAfter = params.optionalTime('created_after');
    const createdBefore = params.optionalTime('created_before');
    const updatedAfter = params.optionalTime('updated_after');
    const updatedBefore = params.optionalTime('updated_before');
    const sourceBranch = params.optionalString('source_branch');
    const targetBranch = params.optionalString('target_branch');
    const labels = params.optionalLabels('labels');
    const iids = params.optionalIntegers('iids');
    const search = params.optionalString('search');
    const draft = params.optionalBoolean('draft');
    const invalid = params.response(c);
    if (invalid) return invalid;
    if (authorId !== undefined && authorUsername !== undefined) {
      return c.json({ error: 'author_id, author_username are mutually exclusive' }, 400);
    }
    const paging = readPageParams(c);
    if (paging instanceof Response) return paging;

    const common = issuableMatcher(deps.state, { state, authorId, authorUsername, createdAfter, createdBefore, updatedAfter, updatedBefore, labels, iids, search });
    const matches = mergeRequestsOf(deps.state, project.id).filter(
      (mr) =>
        common(mr) &&
        (sourceBranch === undefined || mr.sourceBranch === sourceBranch) &&
        (targetBranch === undefined || mr.targetBranch === targetBranch) &&
        (draft === undefined || isDraft(mr.title) === draft),
    );
    sortIssuables(matches, orderBy, sort);
    const page = offsetPage(c, matches, paging);
    if (simple) {
      return c.json(
        page.map((mr) => {
          const entity = mergeRequestBasicEntity(deps.state, deps.site, project, mr);
          const { id, iid, project_id, title, description, state: mrState, created_at, updated_at, web_url } = entity;
          return { id, iid, project_id, title, description, state: mrState, created_at, updated_at, web_url };
        }),
      );
    }
    return c.json(page.map((mr) => mergeRequestBasicEntity(deps.state, deps.site, project, mr)));
  });

  api.get('/projects/:id/merge_requests/:iid', (c) => {
    const context = readContext(c, deps);
    if (context instanceof Response) return context;
    const iid = c.req.param('iid');
    if (!/^\d+$/.test(iid)) return c.json({ error: 'merge_request_iid is invalid' }, 400);
    const mr = mergeRequestsOf(deps.state, context.project.id).find((m) => m.iid === Number.parseInt(iid, 10));
    if (!mr) return recordNotFound(c);
    return c.json(single(deps, context.project, mr, context.viewer));
  });
}
