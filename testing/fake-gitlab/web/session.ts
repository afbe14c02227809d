import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

/** A browser session, kept server-side as GitLab keeps them in Redis; the cookie holds only its id. */
export interface WebSession {
  id: string;
  userId: number | null;
  /** Devise's `user_return_to`: where sign-in continues (the OAuth authorize URL that asked for it). */
  returnTo: string | null;
  /** Rails' authenticity token for this session's forms. */
  csrfToken: string;
  /** A one-shot alert for the next page (Devise's flash). */
  flash: string | null;
}

export interface WebState {
  sessions: Map<string, WebSession>;
  /** Passwords set with setPassword; a user without one signs in with any non-empty password. */
  passwords: Map<number, string>;
}

/** GitLab's session cookie name (config/initializers/session_store.rb). */
export const SESSION_COOKIE = '_gitlab_session';

export function createWebState(): WebState {
  return { sessions: new Map(), passwords: new Map() };
}

function newId(): string {
  return randomBytes(16).toString('hex');
}

/** The request's session, or null without a (known) session cookie. */
export function currentSession(c: Context, web: WebState): WebSession | null {
  const id = getCookie(c, SESSION_COOKIE);
  return id === undefined ? null : (web.sessions.get(id) ?? null);
}

/** The installation's path below the origin: '' or e.g. `/gitlab`. */
export function basePathOf(baseUrl: string): string {
  return new URL(baseUrl).pathname.replace(/\/+$/, '');
}

/** Where the cookie lives: the installation's path, Secure over HTTPS. */
function writeCookie(c: Context, session: WebSession, baseUrl: string): void {
  const url = new URL(baseUrl);
  setCookie(c, SESSION_COOKIE, session.id, {
    path: basePathOf(baseUrl) || '/',
    httpOnly: true,
    sameSite: 'Lax',
    secure: url.protocol === 'https:',
  });
}

/** The request's session, started (and its cookie set) when there is none. */
export function ensureSession(c: Context, web: WebState, baseUrl: string): WebSession {
  const existing = currentSession(c, web);
  if (existing) return existing;
  const session: WebSession = { id: newId(), userId: null, returnTo: null, csrfToken: randomBytes(32).toString('base64url'), flash: null };
  web.sessions.set(session.id, session);
  writeCookie(c, session, baseUrl);
  return session;
}

/** A new session id on sign-in (Devise renews it against session fixation); the contents move over. */
export function renewSession(c: Context, web: WebState, session: WebSession, baseUrl: string): void {
  web.sessions.delete(session.id);
  session.id = newId();
  session.csrfToken = randomBytes(32).toString('base64url');
  web.sessions.set(session.id, session);
  writeCookie(c, session, baseUrl);
}

/** Rails' verified_request?: the form's authenticity_token equals the session's. */
export function csrfTokenValid(session: WebSession | null, token: string | undefined): boolean {
  if (!session || token === undefined) return false;
  const expected = Buffer.from(session.csrfToken);
  const given = Buffer.from(token);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Takes the flash message, so it shows once. */
export function takeFlash(session: WebSession): string | null {
  const flash = session.flash;
  session.flash = null;
  return flash;
}
