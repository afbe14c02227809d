import { relative } from 'node:path';
import type { Context, Hono } from 'hono';
import { runCgi } from './cgi.ts';
import type { AppEnv, Deps } from './context.ts';
import {
  accessDeniedText,
  authenticateGitClient,
  checkGitAccess,
  GIT_ACCESS_MESSAGES,
  type GitActor,
  type GitCommand,
} from './git-access.ts';
import { findProject, type FakeProject } from './state.ts';

/**
 * Smart HTTP paths as GitLab routes them (config/routes/git_http.rb): the project's full path, with or
 * without `.git`, then `info/refs`, `git-upload-pack` or `git-receive-pack`.
 */
const GIT_PATH = /^\/(.+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;

interface GitRoute {
  projectPath: string;
  action: 'info/refs' | 'git-upload-pack' | 'git-receive-pack';
}

function parseGitPath(path: string): GitRoute | null {
  const match = GIT_PATH.exec(path);
  if (!match?.[1] || !match[2]) return null;
  let projectPath: string;
  try {
    projectPath = decodeURIComponent(match[1]);
  } catch {
    return null;
  }
  return { projectPath, action: match[2] as GitRoute['action'] };
}

function plain(text: string, status: 401 | 403 | 404, headers: Record<string, string> = {}): Response {
  return new Response(text, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers } });
}

function commandOf(route: GitRoute, c: Context<AppEnv>): GitCommand | null {
  if (route.action !== 'info/refs') return route.action;
  const service = c.req.query('service');
  return service === 'git-upload-pack' || service === 'git-receive-pack' ? service : null;
}

/** The CGI environment for git http-backend, plus what GitLab's hooks get (GL_ID, GL_REPOSITORY, GL_PROTOCOL). */
function backendEnv(deps: Deps, c: Context<AppEnv>, project: FakeProject, actor: GitActor, action: string): Record<string, string> {
  const repo = deps.repos.ensure(project);
  const headers = c.req.raw.headers;
  const env: Record<string, string> = deps.repos.env({
    GIT_PROJECT_ROOT: deps.repos.root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: `/${relative(deps.repos.root, repo)}/${action}`,
    REQUEST_METHOD: c.req.method,
    QUERY_STRING: new URL(c.req.url).search.replace(/^\?/, ''),
    CONTENT_TYPE: headers.get('content-type') ?? '',
    REMOTE_ADDR: '127.0.0.1',
    GL_REPOSITORY: `project-${project.id}`,
    GL_PROJECT_PATH: project.pathWithNamespace,
    GL_PROTOCOL: 'http',
    FAKE_GITLAB_HOOK_SOCKET: deps.git.hookSocket,
    FAKE_GITLAB_HOOK_SECRET: deps.git.hookSecret,
  });
  const length = headers.get('content-length');
  if (length !== null) env.CONTENT_LENGTH = length;
  // http-backend inflates gzip request bodies itself when told the encoding; git gzips large requests.
  const encoding = headers.get('content-encoding');
  if (encoding !== null) env.HTTP_CONTENT_ENCODING = encoding;
  // Protocol v2 is negotiated through this header (Documentation/technical/protocol-v2.txt).
  const protocol = headers.get('git-protocol');
  if (protocol !== null) env.HTTP_GIT_PROTOCOL = protocol;
  if (actor.user) {
    env.REMOTE_USER = actor.user.username;
    env.GL_ID = `user-${actor.user.id}`;
    env.GL_USERNAME = actor.user.username;
  }
  return env;
}

/**
 * Git smart HTTP in front of `git http-backend`, with GitLab's authentication and access checks
 * (Repositories::GitHttpController): 401 with `WWW-Authenticate: Basic realm="GitLab"` asks git for
 * credentials; a denial answers 403/404 with GitLab's message as text/plain, which git shows as
 * `remote: <message>`.
 */
export function registerGitRoutes(root: Hono<AppEnv>, deps: Deps, basePath: string): void {
  root.on(['GET', 'HEAD', 'POST'], '*', async (c, next) => {
    const path = new URL(c.req.url).pathname.slice(basePath.length);
    const route = parseGitPath(path);
    if (!route) return next();
    const isInfoRefs = route.action === 'info/refs';
    if (isInfoRefs ? c.req.method === 'POST' : c.req.method !== 'POST') return next();
    // GitHttpController#deny_head_requests.
    if (c.req.method === 'HEAD') return new Response(null, { status: 403 });

    const command = commandOf(route, c);
    if (command === null) return plain(GIT_ACCESS_MESSAGES.commandNotAllowed, 403);
    const project = findProject(deps.state, route.projectPath);
    const actor = authenticateGitClient(deps.state, c.req.header('authorization') ?? null, project, command);
    if (actor === null) {
      return plain(accessDeniedText(deps.site.baseUrl), 401, { 'WWW-Authenticate': 'Basic realm="GitLab"' });
    }
    if (actor.user) c.get('record').authorized = true;
    const denial = checkGitAccess(project, actor, command);
    if (denial || !project) return plain(denial?.message ?? GIT_ACCESS_MESSAGES.projectNotFound, denial?.status ?? 404);

    return runCgi({
      command: 'git',
      args: ['http-backend'],
      env: backendEnv(deps, c, project, actor, route.action),
      body: c.req.method === 'POST' ? c.req.raw.body : null,
      children: deps.git.children,
    });
  });
}
