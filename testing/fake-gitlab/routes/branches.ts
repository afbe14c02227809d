import type { Context, Hono } from 'hono';
import { branchEntity, protectedBranchEntity } from '../branch-entities.ts';
import type { AppEnv, Deps } from '../context.ts';
import { offsetPage, readPageParams } from '../paging.ts';
import { canReadCode, memberLevel } from '../permissions.ts';
import { branchCommits, mergedBranches } from '../repo-queries.ts';
import type { FakeProject } from '../state.ts';
import { decodedSegmentAfter, forbidden, projectFor, recordNotFound, viewerOf, type Viewer } from './project-scope.ts';

/** Reads of branches and their protection need `read_code` (lib/api/branches.rb, lib/api/protected_branches.rb). */
function codeReader(c: Context<AppEnv>, deps: Deps): { project: FakeProject; viewer: Viewer } | Response {
  const viewer = viewerOf(c);
  if (viewer instanceof Response) return viewer;
  const project = projectFor(c, deps, viewer);
  if (project instanceof Response) return project;
  if (!canReadCode(project, viewer?.user.id ?? null)) return forbidden(c);
  return { project, viewer };
}

/**
 * BranchesFinder's search: a substring, case-insensitive; `^term` anchors at the start and `term$` at
 * the end (doc/api/branches.md).
 */
function matchesSearch(name: string, search: string): boolean {
  const lowered = name.toLowerCase();
  let term = search.toLowerCase();
  const start = term.startsWith('^');
  const end = term.endsWith('$');
  if (start) term = term.slice(1);
  if (end) term = term.slice(0, -1);
  if (start && end) return lowered === term;
  if (start) return lowered.startsWith(term);
  if (end) return lowered.endsWith(term);
  return lowered.includes(term);
}

async function branchList(deps: Deps, project: FakeProject, viewer: Viewer) {
  const repo = deps.repos.ensure(project);
  const commits = await branchCommits(deps.repos, repo);
  const merged = project.defaultBranch === null ? new Set<string>() : await mergedBranches(deps.repos, repo, project.defaultBranch);
  const level = memberLevel(project, viewer?.user.id ?? null);
  return [...commits.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, commit]) => ({ name, entity: () => branchEntity(deps.site, project, name, commit, merged.has(name), level) }));
}

/** doc/api/branches.md (list, single) and doc/api/protected_branches.md (list, single), read from the real repository. */
export function registerBranchRoutes(api: Hono<AppEnv>, deps: Deps): void {
  api.get('/projects/:id/repository/branches', async (c) => {
    const context = codeReader(c, deps);
    if (context instanceof Response) return context;
    const paging = readPageParams(c);
    if (paging instanceof Response) return paging;
    const search = c.req.query('search');
    const all = await branchList(deps, context.project, context.viewer);
    const found = search ? all.filter((b) => matchesSearch(b.name, search)) : all;
    return c.json(offsetPage(c, found, paging).map((b) => b.entity()));
  });

  api.get('/projects/:id/repository/branches/:branch', async (c) => {
    const context = codeReader(c, deps);
    if (context instanceof Response) return context;
    const name = decodedSegmentAfter(c, '/repository/branches/');
    const branch = (await branchList(deps, context.project, context.viewer)).find((b) => b.name === name);
    if (!branch) return c.json({ message: '404 Branch Not Found' }, 404);
    return c.json(branch.entity());
  });

  api.get('/projects/:id/protected_branches', (c) => {
    const context = codeReader(c, deps);
    if (context instanceof Response) return context;
    const paging = readPageParams(c);
    if (paging instanceof Response) return paging;
    // ProtectedBranchesFinder: `search` is a case-insensitive substring of the rule's name.
    const search = c.req.query('search')?.toLowerCase();
    const rules = context.project.protectedBranches.filter((b) => !search || b.name.toLowerCase().includes(search));
    return c.json(offsetPage(c, rules, paging).map(protectedBranchEntity));
  });

  api.get('/projects/:id/protected_branches/:name', (c) => {
    const context = codeReader(c, deps);
    if (context instanceof Response) return context;
    const name = decodedSegmentAfter(c, '/protected_branches/');
    const rule = context.project.protectedBranches.find((b) => b.name === name);
    if (!rule) return recordNotFound(c);
    return c.json(protectedBranchEntity(rule));
  });
}
