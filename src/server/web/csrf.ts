import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { NotAllowedError } from '../../core/index.ts';
import type { WebEnv } from './context.ts';

export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function csrfFailure(): NotAllowedError {
  return new NotAllowedError(
    'csrf_failed',
    'This form did not come from a forgelink page you have open, or it is too old. Go back, reload the page and try again.',
  );
}

export function tokensMatch(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The browser's own word on where a request comes from. `Origin` is sent on every cross-origin request and
 * on same-origin POSTs (Referrer-Policy same-origin keeps it from being "null"); `Sec-Fetch-Site` backs it
 * up. A request with neither (curl, very old browsers) is judged by its token alone.
 */
export function fromOwnOrigin(c: Context, publicOrigin: string): boolean {
  const origin = c.req.header('origin');
  if (origin !== undefined) return origin === publicOrigin || origin === new URL(c.req.url).origin;
  const site = c.req.header('sec-fetch-site');
  return site === undefined || site === 'same-origin' || site === 'none';
}

/** The token a form field or a fetch header carries. */
export async function givenToken(c: Context): Promise<string | undefined> {
  const header = c.req.header(CSRF_HEADER);
  if (header !== undefined) return header;
  const type = c.req.header('content-type') ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded') && !type.startsWith('multipart/form-data')) return undefined;
  const body = await c.req.parseBody();
  const value = body[CSRF_FIELD];
  return typeof value === 'string' ? value : undefined;
}

/** Every state-changing dashboard request carries the session's token and comes from our own origin; else 403. */
export function requireCsrf(publicOrigin: string): MiddlewareHandler<WebEnv> {
  return async (c, next) => {
    if (!SAFE_METHODS.has(c.req.method)) {
      const auth = c.var.auth;
      if (auth === null || !fromOwnOrigin(c, publicOrigin) || !tokensMatch(auth.session.csrfToken, await givenToken(c))) {
        throw csrfFailure();
      }
    }
    await next();
  };
}
