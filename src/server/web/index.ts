import { Hono, type Context } from 'hono';
import { toHttpError } from '../errors.ts';
import { loadAssets } from './assets.ts';
import { requireSignIn } from './auth-guard.ts';
import type { Auth, WebDeps, WebEnv } from './context.ts';
import { requireCsrf } from './csrf.ts';
import { errorPage } from './pages/errors.ts';
import { authRoutes } from './routes/auth.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { integrationRoutes } from './routes/integrations.ts';
import { keyPageRoutes } from './routes/keys.ts';
import { runPageRoutes } from './routes/runs.ts';
import { setupRoutes } from './routes/setup.ts';
import { secretPageRoutes } from './routes/secrets.ts';
import { createSessionManager } from './session.ts';
import { createSetupLinks } from './setup-link.ts';

export type { WebDeps } from './context.ts';
export { createAttemptLimiter, type AttemptLimiter } from './rate-limit.ts';
export { hashPassword, passwordProblem } from './passwords.ts';
export { createSetupLinks, SETUP_LINK_LIFETIME_MS, type SetupLinks } from './setup-link.ts';

/** The pages may only load what this origin serves, run no inline code, and never be framed. */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
};

/** The web dashboard: server-rendered pages, sessions in cookies, CSRF tokens on every form. */
export function createWebRoutes(deps: WebDeps) {
  const publicOrigin = new URL(deps.publicUrl).origin;
  const sessions = createSessionManager({
    sessions: deps.sessions,
    clock: deps.clock,
    cookies: { secure: publicOrigin.startsWith('https:') },
  });
  const assets = loadAssets();
  const web = new Hono<WebEnv>();

  web.route('/assets', assets.routes);
  // Registered after the assets, so those return before any of this runs for them.
  web.use('*', async (c, next) => {
    await next();
    // Pages carry CSRF tokens and private data: never cached, never stored by a shared proxy.
    c.header('Cache-Control', 'no-store');
  });
  web.use('*', sessions.load());
  web.route('/', authRoutes(deps, sessions, assets.urls, publicOrigin));
  web.route('/', setupRoutes(deps, deps.setupLinks ?? createSetupLinks({ clock: deps.clock }), sessions, assets.urls, publicOrigin));
  for (const path of ['/', '/integrations/*', '/runs/*', '/settings/*']) web.use(path, requireSignIn(), requireCsrf(publicOrigin));
  web.route('/', dashboardRoutes(deps, assets.urls));
  web.route('/integrations/gitlab', integrationRoutes(deps, assets.urls));
  web.route('/runs', runPageRoutes(deps, assets.urls));
  web.route('/settings/keys', keyPageRoutes(deps, assets.urls));
  web.route('/settings/secrets', secretPageRoutes(deps, assets.urls));

  /** A page that says what went wrong, with the status the typed error maps to. */
  function errorResponse(c: Context, error: unknown): Response | Promise<Response> {
    const { status, body } = toHttpError(error);
    if (status >= 500) deps.logger.error({ err: error, path: c.req.path }, 'page failed');
    const title = status === 404 ? 'Not found' : status === 403 ? 'Not allowed' : status >= 500 ? 'Something went wrong' : 'That did not work';
    // Unset when the failure came before the session was read.
    const auth: Auth | null = c.get('auth') ?? null;
    return c.html(errorPage({ assets: assets.urls, auth, title, message: body.error.message }), status);
  }
  web.onError((error, c) => errorResponse(c, error));

  return {
    routes: web,
    /** For the app's error handler: failures outside the API (a too large form, say) get a page, not JSON. */
    errorResponse,
    /** For the app's not-found handler: paths outside the API get a page, not JSON. */
    notFoundPage: () => errorPage({ assets: assets.urls, auth: null, title: 'Not found', message: 'There is no page at this address.' }),
  };
}
