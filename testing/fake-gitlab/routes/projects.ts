import type { Hono } from 'hono';
import type { AppEnv, Deps } from '../context.ts';
import { projectEntity, simpleProjectEntity } from '../entities.ts';
import { keysetPage, OFFSET_LIMIT, offsetPage, readPageParams } from '../paging.ts';
import { accessLevelOf, type FakeProject, type FakeState } from '../state.ts';
import { projectFromParam, rawProjectId, readBoolean, viewerOf, visibleTo, type Viewer } from './project-scope.ts';

const ORDER_BY = ['id', 'name', 'path', 'created_at', 'updated_at', 'last_activity_at', 'star_count'] as const;
type OrderBy = (typeof ORDER_BY)[number];
const ACCESS_LEVELS = ['5', '10', '15', '20', '30', '40', '50'];

function compareBy(orderBy: OrderBy): (a: FakeProject, b: FakeProject) => number {
  switch (orderBy) {
    case 'id':
    case 'star_count':
      return () => 0;
    case 'name':
      return (a, b) => a.name.localeCompare(b.name);
    case 'path':
      return (a, b) => a.path.localeCompare(b.path);
    case 'created_at':
      return (a, b) => a.createdAt.localeCompare(b.createdAt);
    case 'updated_at':
    case 'last_activity_at':
      return (a, b) => a.lastActivityAt.localeCompare(b.lastActivityAt);
  }
}

/** Sorts like GitLab: the chosen column, then id, both in the requested direction. */
function sortProjects(projects: FakeProject[], orderBy: OrderBy, direction: 'asc' | 'desc'): FakeProject[] {
  const primary = compareBy(orderBy);
  const sign = direction === 'asc' ? 1 : -1;
  return projects.sort((a, b) => sign * (primary(a, b) || a.id - b.id));
}

function matchesSearch(project: FakeProject, search: string, inNamespaces: boolean): boolean {
  const needle = search.toLowerCase();
  const fields = [project.name, project.path, project.description ?? ''];
  if (inNamespaces) fields.push(project.pathWithNamespace);
  return fields.some((field) => field.toLowerCase().includes(needle));
}

interface ListFilters {
  membership: boolean;
  minAccessLevel: number | null;
  archived: boolean | undefined;
  search: string | undefined;
  searchNamespaces: boolean;
  visibility: string | undefined;
  idAfter: number | null;
  idBefore: number | null;
}

function filterProjects(state: FakeState, viewer: Viewer, filters: ListFilters): FakeProject[] {
  const result: FakeProject[] = [];
  for (const project of state.projects.values()) {
    if (!visibleTo(project, viewer)) continue;
    const level = viewer === null ? null : accessLevelOf(project, viewer.user.id);
    if (filters.membership && level === null) continue;
    if (filters.minAccessLevel !== null && (level === null || level < filters.minAccessLevel)) continue;
    if (filters.archived !== undefined && project.archived !== filters.archived) continue;
    if (filters.search && !matchesSearch(project, filters.search, filters.searchNamespaces)) continue;
    if (filters.visibility && project.visibility !== filters.visibility) continue;
    if (filters.idAfter !== null && project.id <= filters.idAfter) continue;
    if (filters.idBefore !== null && project.id >= filters.idBefore) continue;
    result.push(project);
  }
  return result;
}

function optionalInt(raw: string | undefined): number | null {
  return raw && /^\d+$/.test(raw) ? Number.parseInt(raw, 10) : null;
}

/**
 * lib/api/projects.rb: lists use Entities::ProjectWithAccess for a signed-in user and
 * Entities::BasicProjectDetails for `simple=true` or an anonymous request; a single project is
 * the full entity, without `permissions` when anonymous.
 */
function present(deps: Deps, project: FakeProject, viewer: Viewer, shape: 'list' | 'simple' | 'single') {
  if (shape === 'simple' || (shape === 'list' && viewer === null)) {
    return simpleProjectEntity(deps.state, deps.site, project);
  }
  const entity = projectEntity(deps.state, deps.site, project, viewer?.user.id ?? 0);
  if (viewer !== null) return entity;
  const { permissions: _permissions, ...anonymous } = entity;
  return anonymous;
}

/** doc/api/projects.md: "List all projects" and "Get a single project". */
export function registerProjectRoutes(api: Hono<AppEnv>, deps: Deps): void {
  api.get('/projects', (c) => {
    const viewer = viewerOf(c);
    if (viewer instanceof Response) return viewer;

    const membership = readBoolean(c, 'membership');
    if (membership instanceof Response) return membership;
    const archived = readBoolean(c, 'archived');
    if (archived instanceof Response) return archived;
    const simple = readBoolean(c, 'simple');
    if (simple instanceof Response) return simple;
    const searchNamespaces = readBoolean(c, 'search_namespaces');
    if (searchNamespaces instanceof Response) return searchNamespaces;

    const minAccessRaw = c.req.query('min_access_level');
    if (minAccessRaw !== undefined && !ACCESS_LEVELS.includes(minAccessRaw)) {
      return c.json({ error: 'min_access_level does not have a valid value' }, 400);
    }
    const orderByRaw = c.req.query('order_by') ?? 'created_at';
    const orderBy = ORDER_BY.find((o) => o === orderByRaw);
    if (!orderBy) return c.json({ error: 'order_by does not have a valid value' }, 400);
    const sortRaw = (c.req.query('sort') ?? 'desc').toLowerCase();
    if (sortRaw !== 'asc' && sortRaw !== 'desc') return c.json({ error: 'sort does not have a valid value' }, 400);
    const paging = readPageParams(c);
    if (paging instanceof Response) return paging;

    const filters: ListFilters = {
      membership: membership ?? false,
      minAccessLevel: minAccessRaw === undefined ? null : Number.parseInt(minAccessRaw, 10),
      archived,
      search: c.req.query('search'),
      searchNamespaces: searchNamespaces ?? false,
      visibility: c.req.query('visibility'),
      idAfter: optionalInt(c.req.query('id_after')),
      idBefore: optionalInt(c.req.query('id_before')),
    };
    const sorted = sortProjects(filterProjects(deps.state, viewer, filters), orderBy, sortRaw);

    let page: FakeProject[];
    if (c.req.query('pagination') === 'keyset') {
      // Gitlab::Pagination::Keyset.available? — this fake supports keyset paging ordered by id only.
      if (orderBy !== 'id') {
        return c.json({ error: 'Keyset pagination is not yet available for this type of request' }, 405);
      }
      page = keysetPage(c, sorted, paging.perPage, sortRaw);
    } else {
      if ((paging.page - 1) * paging.perPage > OFFSET_LIMIT) {
        return c.json(
          {
            error: `Offset pagination has a maximum allowed offset of ${OFFSET_LIMIT} for requests that return objects of type Project. Remaining records can be retrieved using keyset pagination.`,
          },
          405,
        );
      }
      page = offsetPage(c, sorted, paging);
    }
    return c.json(page.map((project) => present(deps, project, viewer, simple ? 'simple' : 'list')));
  });

  api.get('/projects/:id', (c) => {
    const viewer = viewerOf(c);
    if (viewer instanceof Response) return viewer;
    const project = projectFromParam(deps.state, rawProjectId(c));
    if (!project || !visibleTo(project, viewer)) return c.json({ message: '404 Project Not Found' }, 404);
    return c.json(present(deps, project, viewer, 'single'));
  });
}
