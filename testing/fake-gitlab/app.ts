import { Hono } from 'hono';
import type { AppEnv, Deps } from './context.ts';
import { registerGitRoutes } from './git-http.ts';
import { apiHeaders, noteUnimplemented, rateLimitsAndFaults, recordRequests } from './middleware.ts';
import { registerBranchRoutes } from './routes/branches.ts';
import { registerIssueRoutes } from './routes/issues.ts';
import { registerMergeRequestRoutes } from './routes/merge-requests.ts';
import { registerMetadataRoutes } from './routes/metadata.ts';
import { registerOAuthAuthorizeRoutes } from './routes/oauth-authorize.ts';
import { registerOAuthTokenRoutes } from './routes/oauth-token.ts';
import { registerProjectRoutes } from './routes/projects.ts';
import { registerSignInRoutes } from './routes/sign-in.ts';
import { registerTokenRoutes } from './routes/tokens.ts';
import { registerUserRoutes } from './routes/user.ts';

const NOT_FOUND_PAGE = `<!DOCTYPE html>
<html>
<head><title>The page could not be found (404)</title></head>
<body><h1>404</h1><h2>The page could not be found or you don't have permission to view it.</h2></body>
</html>
`;

/** The fake's Hono application, with every route under `basePath` (e.g. `/gitlab`, or ''). */
export function createApp(deps: Deps, basePath: string): Hono<AppEnv> {
  const api = new Hono<AppEnv>();
  api.use('*', apiHeaders());
  api.use('*', rateLimitsAndFaults(deps));
  registerTokenRoutes(api, deps);
  registerUserRoutes(api, deps);
  registerMetadataRoutes(api, deps);
  registerProjectRoutes(api, deps);
  registerMergeRequestRoutes(api, deps);
  registerIssueRoutes(api, deps);
  registerBranchRoutes(api, deps);
  // Grape's catch-all route at the end of lib/api/api.rb: `error!('404 Not Found', 404)`, which Grape renders as
  // `{"error":…}` (an existing route refusing a request says `{"message":…}` instead).
  api.all('*', (c) => {
    noteUnimplemented(deps, c);
    return c.json({ error: '404 Not Found' }, 404);
  });

  const root = basePath === '' ? new Hono<AppEnv>() : new Hono<AppEnv>().basePath(basePath);
  root.use('*', recordRequests(deps, basePath));
  // lib/api/api.rb: every /api/v3 route answers 410 Gone.
  root.all('/api/v3/*', (c) => c.json({ error: 'API V3 is no longer supported. Use API V4 instead.' }, 410));
  root.route('/api/v4', api);
  registerOAuthAuthorizeRoutes(root, deps);
  registerOAuthTokenRoutes(root, deps);
  registerSignInRoutes(root, deps);
  registerGitRoutes(root, deps, basePath);
  // Rails answers a path no route matches with its static 404 page.
  root.notFound((c) => {
    noteUnimplemented(deps, c);
    return c.html(NOT_FOUND_PAGE, 404);
  });
  return root;
}
