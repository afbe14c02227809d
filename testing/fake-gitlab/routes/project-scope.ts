import type { Context } from 'hono';
import { authenticate, readScopes, type Authenticated } from '../auth.ts';
import type { AppEnv, Deps } from '../context.ts';
import { canReadProject } from '../permissions.ts';
import { findProject, type FakeProject, type FakeState } from '../state.ts';

/** A signed-in user, or null for an anonymous request (which sees public projects only). */
export type Viewer = Authenticated | null;

/**
 * GitLab lets anonymous GET requests read public projects; a token that is present must be valid
 * and carry `api` or `read_api`.
 */
export function viewerOf(c: Context<AppEnv>): Viewer | Response {
  const credential = c.get('credential');
  if (credential.kind === 'none') return null;
  return authenticate(c, credential, readScopes());
}

/** Writes need a valid token with `api` (API::API registers no other scope for non-GET requests). */
export function writerOf(c: Context<AppEnv>): Authenticated | Response {
  return authenticate(c, c.get('credential'), ['api']);
}

export function visibleTo(project: FakeProject, viewer: Viewer): boolean {
  return canReadProject(project, viewer?.user.id ?? null);
}

/**
 * GitLab takes `:id` as a number or a URL-encoded full path (`group%2Fsub%2Fapp`); paths match
 * case-insensitively.
 */
export function projectFromParam(state: FakeState, rawId: string): FakeProject | undefined {
  if (/^\d+$/.test(rawId)) return findProject(state, Number.parseInt(rawId, 10));
  try {
    return findProject(state, decodeURIComponent(rawId));
  } catch {
    return undefined;
  }
}

/** The `:id` segment as sent, still percent-encoded, so `group%2Fsub` is not split at the slash. */
export function rawProjectId(c: Context): string {
  const path = new URL(c.req.url).pathname;
  const match = path.match(/\/api\/v4\/projects\/([^/]+)/);
  return match?.[1] ?? '';
}

/** The raw path segment after `marker` (e.g. `/repository/branches/`), percent-decoded; null if absent or malformed. */
export function decodedSegmentAfter(c: Context, marker: string): string | null {
  const path = new URL(c.req.url).pathname;
  const at = path.indexOf(marker);
  if (at === -1) return null;
  const raw = path.slice(at + marker.length);
  if (raw === '' || raw.includes('/')) return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

export function projectNotFound(c: Context): Response {
  return c.json({ message: '404 Project Not Found' }, 404);
}

/** lib/api/helpers.rb `forbidden!`. */
export function forbidden(c: Context): Response {
  return c.json({ message: '403 Forbidden' }, 403);
}

/** ActiveRecord::RecordNotFound as lib/api/api.rb renders it. */
export function recordNotFound(c: Context): Response {
  return c.json({ message: '404 Not found' }, 404);
}

/** The `:id` project if the viewer may see it; otherwise the 404 GitLab answers (never 403). */
export function projectFor(c: Context<AppEnv>, deps: Deps, viewer: Viewer): FakeProject | Response {
  const project = projectFromParam(deps.state, rawProjectId(c));
  if (!project || !visibleTo(project, viewer)) return projectNotFound(c);
  return project;
}

/** Grape's Boolean coercion for query flags: true/false/1/0 (any case); anything else is a 400. */
export function readBoolean(c: Context, name: string): boolean | undefined | Response {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return undefined;
  const lowered = raw.toLowerCase();
  if (lowered === 'true' || lowered === '1') return true;
  if (lowered === 'false' || lowered === '0') return false;
  return c.json({ error: `${name} is invalid` }, 400);
}
