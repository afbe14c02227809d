import { createHash, randomBytes } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Clock, Session, SessionStore } from '../../core/index.ts';
import type { WebEnv } from './context.ts';

/** A session ends after 12 hours without a request, and after 7 days whatever happens. */
export const IDLE_TIMEOUT_MS = 12 * 3600_000;
export const ABSOLUTE_LIFETIME_MS = 7 * 24 * 3600_000;
// Writing last_seen on every request would make each page view a database write; a minute's slack is enough.
const TOUCH_AFTER_MS = 60_000;

export function hashSessionValue(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

export type CookieSettings = { secure: boolean };

/**
 * Cookie names and attributes. Behind https the names carry the `__Host-` prefix, which browsers accept only
 * with Secure, Path=/ and no Domain, so a sibling subdomain cannot plant or overwrite them. SameSite=Lax (not
 * Strict) because GitLab's OAuth redirect back to the callback is a cross-site navigation that must carry
 * the session.
 */
export function cookieNames(settings: CookieSettings): { session: string; signIn: string } {
  const prefix = settings.secure ? '__Host-' : '';
  return { session: `${prefix}forgelink_session`, signIn: `${prefix}forgelink_signin` };
}

function cookieOptions(settings: CookieSettings, maxAgeSeconds: number) {
  return { httpOnly: true, sameSite: 'Lax', secure: settings.secure, path: '/', maxAge: maxAgeSeconds } as const;
}

export type SessionManager = ReturnType<typeof createSessionManager>;

/** Starts, reads and ends dashboard sessions: a random 32-byte cookie value, stored only as its SHA-256. */
export function createSessionManager(deps: { sessions: SessionStore; clock: Clock; cookies: CookieSettings }) {
  const { sessions, clock, cookies } = deps;
  const names = cookieNames(cookies);

  function expired(session: Session, now: number): boolean {
    return Date.parse(session.expiresAt) <= now || Date.parse(session.createdAt) + ABSOLUTE_LIFETIME_MS <= now;
  }

  return {
    names,

    /** A fresh session for `userId` (never a reused id: that would allow session fixation). */
    async start(c: Context, userId: string): Promise<Session> {
      const value = randomToken();
      const now = clock.now();
      const session: Session = {
        id: hashSessionValue(value),
        userId,
        csrfToken: randomToken(),
        createdAt: now.toISOString(),
        lastSeenAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + IDLE_TIMEOUT_MS).toISOString(),
      };
      await sessions.deleteExpiredSessions(now.toISOString());
      await sessions.createSession(session);
      setCookie(c, names.session, value, cookieOptions(cookies, ABSOLUTE_LIFETIME_MS / 1000));
      return session;
    },

    async end(c: Context, session: Session | null): Promise<void> {
      if (session !== null) await sessions.deleteSession(session.id);
      deleteCookie(c, names.session, { path: '/', secure: cookies.secure });
    },

    /** Sets `auth` (or null) and `sessionEnded` on every dashboard request. */
    load(): MiddlewareHandler<WebEnv> {
      return async (c, next) => {
        c.set('auth', null);
        c.set('sessionEnded', false);
        const value = getCookie(c, names.session);
        if (value !== undefined && value !== '') {
          const found = await sessions.getSession(hashSessionValue(value));
          const now = clock.now().getTime();
          if (found === null || expired(found.session, now)) {
            if (found !== null) await sessions.deleteSession(found.session.id);
            deleteCookie(c, names.session, { path: '/', secure: cookies.secure });
            c.set('sessionEnded', true);
          } else {
            let session = found.session;
            if (now - Date.parse(session.lastSeenAt) >= TOUCH_AFTER_MS) {
              const times = { lastSeenAt: new Date(now).toISOString(), expiresAt: new Date(now + IDLE_TIMEOUT_MS).toISOString() };
              await sessions.touchSession(session.id, times);
              session = { ...session, ...times };
            }
            c.set('auth', { user: found.user, session });
          }
        }
        await next();
      };
    },

    /** The sign-in form's CSRF token, kept in its own short-lived cookie (there is no session yet). */
    signInToken(c: Context): string {
      const existing = getCookie(c, names.signIn);
      if (existing !== undefined && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
      const token = randomToken();
      setCookie(c, names.signIn, token, cookieOptions(cookies, 3600));
      return token;
    },

    signInCookie(c: Context): string | undefined {
      return getCookie(c, names.signIn);
    },

    clearSignInToken(c: Context): void {
      deleteCookie(c, names.signIn, { path: '/', secure: cookies.secure });
    },
  };
}
