import type { Context, MiddlewareHandler } from 'hono';
import type { Auth, WebEnv } from './context.ts';
import { safeNext } from './format.ts';

/** The signed-in user of a route behind `requireSignIn`. */
export function authOf(c: Context<WebEnv>): Auth {
  const auth = c.var.auth;
  if (auth === null) throw new Error('authOf used on a route without requireSignIn');
  return auth;
}

/** Where a signed-out request should return after signing in: the page itself, or for a form the page it was on. */
function returnPath(c: Context<WebEnv>): string {
  const url = new URL(c.req.url);
  if (c.req.method === 'GET' || c.req.method === 'HEAD') return safeNext(`${url.pathname}${url.search}`);
  const referer = c.req.header('referer');
  if (referer === undefined) return '/';
  try {
    const from = new URL(referer);
    return from.origin === url.origin ? safeNext(`${from.pathname}${from.search}`) : '/';
  } catch {
    return '/';
  }
}

/** The dashboard's JSON and event-stream endpoints are asked for those explicitly (app.js, EventSource). */
function wantsData(c: Context<WebEnv>): boolean {
  const accept = c.req.header('accept') ?? '';
  return !accept.includes('text/html') && /application\/json|text\/event-stream/.test(accept);
}

/**
 * Pages send a signed-out browser (or `curl`) to sign-in and back afterwards; the dashboard's JSON and
 * event-stream endpoints answer 401. "Your session has ended" only to someone whose session did end.
 */
export function requireSignIn(): MiddlewareHandler<WebEnv> {
  return async (c, next) => {
    if (c.var.auth !== null) return next();
    if (wantsData(c)) {
      const message = c.var.sessionEnded ? 'Your session has ended; sign in again.' : 'Sign in to the dashboard first.';
      return c.json({ error: { code: 'unauthenticated', message } }, 401);
    }
    const query = new URLSearchParams({ next: returnPath(c) });
    if (c.var.sessionEnded) query.set('reason', 'expired');
    return c.redirect(`/sign-in?${query.toString()}`, c.req.method === 'GET' ? 302 : 303);
  };
}
