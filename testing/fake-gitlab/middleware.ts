import type { Context, MiddlewareHandler } from 'hono';
import { resolveCredential } from './auth.ts';
import type { AppEnv, Deps } from './context.ts';
import type { RecordedRequest } from './state.ts';

/** Requests per minute the fake reports in RateLimit-Limit (GitLab's authenticated API default is 2000/min). */
const RATE_LIMIT_PER_MINUTE = 2000;

/** Resolves the token once per request and records the request for assertions. */
export function recordRequests(deps: Deps, basePath: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const credential = resolveCredential(deps.state, c.req.raw);
    c.set('credential', credential);
    if (credential.kind === 'ok' && credential.token.type === 'personal') {
      credential.token.record.lastUsedAt = deps.state.now().toISOString();
    }
    const url = new URL(c.req.url);
    const record = {
      method: c.req.method,
      path: url.pathname.slice(basePath.length) || '/',
      query: Object.fromEntries(url.searchParams),
      authorized: credential.kind === 'ok',
    };
    deps.state.requests.push(record);
    // Git routes authenticate with Basic credentials and mark the record themselves.
    c.set('record', record);
    for (const hold of deps.state.faults.held) if (hold.matches(record)) await hold.until;
    await next();
  };
}

/**
 * Remembers a request that reached a catch-all: GitLab would answer it with a 404 too, but a route the fake does not
 * implement may exist on a real GitLab, so a client bug could hide behind that 404. `FakeGitLab.close()` fails on
 * these unless the test took them with `takeUnimplemented()`.
 */
export function noteUnimplemented(deps: Deps, c: Context<AppEnv>): void {
  // Outside the base path (GitLab installed under /gitlab, asked for /api/v4/…) nothing is GitLab's: the web
  // server's 404 is the whole story there, and no request was recorded.
  const record = c.get('record') as RecordedRequest | undefined;
  if (record !== undefined) deps.state.unimplemented.push(record);
}

interface Window {
  resetAt: number;
  observed: number;
}

/** The current one-minute window, counting this request. */
function observe(windows: Map<string, Window>, name: string, nowMs: number): Window {
  const nowSeconds = Math.floor(nowMs / 1000);
  let window = windows.get(name);
  if (!window || window.resetAt <= nowSeconds) {
    window = { resetAt: nowSeconds - (nowSeconds % 60) + 60, observed: 0 };
    windows.set(name, window);
  }
  window.observed += 1;
  return window;
}

function setRateLimitHeaders(c: Context, name: string, window: Window, remaining: number): void {
  c.header('RateLimit-Limit', String(RATE_LIMIT_PER_MINUTE));
  c.header('RateLimit-Name', name);
  c.header('RateLimit-Observed', String(window.observed));
  c.header('RateLimit-Remaining', String(remaining));
  c.header('RateLimit-Reset', String(window.resetAt));
}

/**
 * RateLimit-* headers on every API answer, and the injected faults: a 429 as Rack::Attack sends it
 * (doc/administration/settings/user_and_ip_rate_limits.md: body "Retry later", Retry-After,
 * RateLimit-ResetTime), then 5xx answers as a proxy in front of GitLab would send them.
 */
export function rateLimitsAndFaults(deps: Deps): MiddlewareHandler<AppEnv> {
  const windows = new Map<string, Window>();
  return async (c, next) => {
    const { faults } = deps.state;
    const name = c.get('credential').kind === 'none' ? 'throttle_unauthenticated_api' : 'throttle_authenticated_api';
    const nowMs = deps.state.now().getTime();
    const window = observe(windows, name, nowMs);

    if (faults.rateLimited.remaining > 0) {
      faults.rateLimited.remaining -= 1;
      const retryAfter = faults.rateLimited.retryAfterSeconds;
      setRateLimitHeaders(c, name, window, 0);
      c.header('Retry-After', String(retryAfter));
      c.header('RateLimit-ResetTime', new Date(nowMs + retryAfter * 1000).toUTCString());
      return c.text('Retry later\n', 429);
    }
    if (faults.serverErrors.remaining > 0) {
      faults.serverErrors.remaining -= 1;
      const status = faults.serverErrors.status === 503 ? 503 : 502;
      return c.html(
        `<html><body><h1>${status} ${status === 502 ? 'Bad Gateway' : 'Service Unavailable'}</h1></body></html>\n`,
        status,
      );
    }

    await next();
    setRateLimitHeaders(c, name, window, Math.max(0, RATE_LIMIT_PER_MINUTE - window.observed));
  };
}

/** Headers lib/api/api.rb sets on every API answer. */
export function apiHeaders(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    c.header('X-Frame-Options', 'SAMEORIGIN');
    c.header('X-Content-Type-Options', 'nosniff');
  };
}
