import type { Context, Hono } from 'hono';
import type { AppEnv, Deps } from '../context.ts';
import { readParams, stringParams } from '../params.ts';
import type { FakeUser } from '../state.ts';
import { homePage, rejectedPage, signInPage } from '../web/pages.ts';
import { basePathOf, csrfTokenValid, currentSession, ensureSession, renewSession, takeFlash } from '../web/session.ts';

/** Devise's failure message for a wrong login or password (config/locales/devise.en.yml, `invalid`). */
export const INVALID_LOGIN = 'Invalid login or password.';

/** User.find_by_login: the username in any case, or the primary email. */
function findByLogin(deps: Deps, login: string): FakeUser | undefined {
  const wanted = login.toLowerCase();
  for (const user of deps.state.users.values()) {
    if (user.username.toLowerCase() === wanted || user.email.toLowerCase() === wanted) return user;
  }
  return undefined;
}

/** A user without a password set (setPassword) signs in with any non-empty one. */
function passwordMatches(deps: Deps, user: FakeUser, password: string): boolean {
  if (password === '') return false;
  const expected = deps.state.web.passwords.get(user.id);
  return expected === undefined || expected === password;
}

/**
 * The browser side of GitLab just deep enough for OAuth: Devise's sign-in form at /users/sign_in with
 * a session cookie, sign-out, and a root page. Sign-in continues at the stored `user_return_to`.
 */
export function registerSignInRoutes(root: Hono<AppEnv>, deps: Deps): void {
  const { web } = deps.state;
  const home = () => new URL(basePathOf(deps.site.baseUrl) || '/', deps.site.baseUrl).toString();
  const signInUrl = () => `${deps.site.baseUrl}/users/sign_in`;

  root.get('/users/sign_in', (c) => {
    const session = ensureSession(c, web, deps.site.baseUrl);
    if (session.userId !== null) return c.redirect(home(), 302);
    return c.html(signInPage({ action: `${basePathOf(deps.site.baseUrl)}/users/sign_in`, csrfToken: session.csrfToken, alert: takeFlash(session) }));
  });

  root.post('/users/sign_in', async (c) => {
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;
    const params = stringParams(raw);
    const session = currentSession(c, web);
    if (!session || !csrfTokenValid(session, params.authenticity_token)) return c.html(rejectedPage(), 422);
    const user = findByLogin(deps, params['user[login]'] ?? '');
    if (!user || user.state !== 'active' || !passwordMatches(deps, user, params['user[password]'] ?? '')) {
      // Devise's failure app sends the browser back to the form with the alert in the flash.
      session.flash = INVALID_LOGIN;
      return c.redirect(signInUrl(), 302);
    }
    session.userId = user.id;
    renewSession(c, web, session, deps.site.baseUrl);
    const returnTo = session.returnTo;
    session.returnTo = null;
    return c.redirect(returnTo === null ? home() : new URL(returnTo, deps.site.baseUrl).toString(), 302);
  });

  const signOut = async (c: Context<AppEnv>) => {
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;
    const session = currentSession(c, web);
    if (!session || !csrfTokenValid(session, stringParams(raw).authenticity_token)) return c.html(rejectedPage(), 422);
    web.sessions.delete(session.id);
    return c.redirect(signInUrl(), 302);
  };
  root.post('/users/sign_out', signOut);
  root.delete('/users/sign_out', signOut);

  root.get('/', (c) => {
    const session = currentSession(c, web);
    const user = session?.userId == null ? undefined : deps.state.users.get(session.userId);
    return user ? c.html(homePage(user)) : c.redirect(signInUrl(), 302);
  });
}
