import type { Context, Hono } from 'hono';
import type { AppEnv, Deps } from '../context.ts';
import { issueEntity } from '../issuable-entities.ts';
import { createIssue, issuesOf } from '../issues.ts';
import { offsetPage, readPageParams } from '../paging.ts';
import { ParamReader, readParams } from '../params.ts';
import { canCreateIssue, canReadIssue, canReadIssues } from '../permissions.ts';
import type { FakeProject } from '../state.ts';
import { issuableMatcher, sortIssuables } from './issuable-filters.ts';
import { forbidden, projectFor, recordNotFound, viewerOf, writerOf, type Viewer } from './project-scope.ts';

const STATES = ['opened', 'closed', 'all'] as const;
const ORDER_BY = ['created_at', 'updated_at', 'priority', 'due_date', 'relative_position', 'label_priority', 'milestone_due', 'popularity', 'weight', 'title'] as const;
const SCOPES = ['created-by-me', 'assigned-to-me', 'created_by_me', 'assigned_to_me', 'all'] as const;

function readContext(c: Context<AppEnv>, deps: Deps): { project: FakeProject; viewer: Viewer } | Response {
  const viewer = viewerOf(c);
  if (viewer instanceof Response) return viewer;
  const project = projectFor(c, deps, viewer);
  if (project instanceof Response) return project;
  if (!canReadIssues(project, viewer?.user.id ?? null)) return forbidden(c);
  return { project, viewer };
}

/** doc/api/issues.md: create, list (with `author_id`, `created_after`, `state`, offset paging) and get one issue. */
export function registerIssueRoutes(api: Hono<AppEnv>, deps: Deps): void {
  api.post('/projects/:id/issues', async (c) => {
    const writer = writerOf(c);
    if (writer instanceof Response) return writer;
    const project = projectFor(c, deps, writer);
    if (project instanceof Response) return project;
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;
    const params = new ParamReader(raw);
    const title = params.requiredString('title');
    const description = params.optionalString('description');
    const labels = params.optionalLabels('labels');
    const confidential = params.optionalBoolean('confidential');
    const invalid = params.response(c);
    if (invalid) return invalid;
    if (!canCreateIssue(project, writer.user.id)) return forbidden(c);
    // Issue validates the title's presence; render_validation_error! answers 400 with the field.
    if (title.trim() === '') return c.json({ message: { title: ["can't be blank"] } }, 400);
    const issue = createIssue(deps.state, project, {
      authorId: writer.user.id,
      title,
      description: description ?? null,
      labels: labels ?? [],
      confidential: confidential ?? false,
    });
    return c.json(issueEntity(deps.state, deps.site, project, issue, writer.user), 201);
  });

  api.get('/projects/:id/issues', async (c) => {
    const context = readContext(c, deps);
    if (context instanceof Response) return context;
    const { project, viewer } = context;
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;
    const params = new ParamReader(raw);
    const state = params.oneOf('state', STATES, 'all');
    const orderBy = params.oneOf('order_by', ORDER_BY, 'created_at');
    const sort = params.oneOf('sort', ['asc', 'desc'] as const, 'desc');
    params.oneOf('scope', SCOPES, 'all');
    const authorId = params.optionalInteger('author_id');
    const authorUsername = params.optionalString('author_username');
    const createdAfter = params.optionalTime('created_after');
    const createdBefore = params.optionalTime('created_before');
    const updatedAfter = params.optionalTime('updated_after');
    const updatedBefore = params.optionalTime('updated_before');
    const labels = params.optionalLabels('labels');
    const iids = params.optionalIntegers('iids');
    const search = params.optionalString('search');
    const confidential = params.optionalBoolean('confidential');
    const invalid = params.response(c);
    if (invalid) return invalid;
    if (authorId !== undefined && authorUsername !== undefined) {
      return c.json({ error: 'author_id, author_username are mutually exclusive' }, 400);
    }
    const paging = readPageParams(c);
    if (paging instanceof Response) return paging;

    const viewerId = viewer?.user.id ?? null;
    const common = issuableMatcher(deps.state, { state, authorId, authorUsername, createdAfter, createdBefore, updatedAfter, updatedBefore, labels, iids, search });
    const matches = issuesOf(deps.state, project.id).filter(
      (issue) => canReadIssue(project, viewerId, issue) && common(issue) && (confidential === undefined || issue.confidential === confidential),
    );
    sortIssuables(matches, orderBy, sort);
    const page = offsetPage(c, matches, paging);
    return c.json(page.map((issue) => issueEntity(deps.state, deps.site, project, issue, viewer?.user ?? null)));
  });

  api.get('/projects/:id/issues/:iid', (c) => {
    const context = readContext(c, deps);
    if (context instanceof Response) return context;
    const iid = c.req.param('iid');
    if (!/^\d+$/.test(iid)) return c.json({ error: 'issue_iid is invalid' }, 400);
    const issue = issuesOf(deps.state, context.project.id).find((i) => i.iid === Number.parseInt(iid, 10));
    if (!issue || !canReadIssue(context.project, context.viewer?.user.id ?? null, issue)) return recordNotFound(c);
    return c.json(issueEntity(deps.state, deps.site, context.project, issue, context.viewer?.user ?? null));
  });
}
