import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono, type Context } from 'hono';
import { looksLikeApiKey, type User } from '../../../core/index.ts';
import type { WebDeps, WebEnv } from '../context.ts';
import { fieldText } from '../form.ts';
import { CSRF_FIELD, fromOwnOrigin, requireCsrf, tokensMatch } from '../csrf.ts';
import { safeNext } from '../format.ts';
import type { AssetUrls } from '../layout.ts';
import { signInPage, type SignInView } from '../pages/sign-in.ts';
import { spendPasswordTime, verifyPassword } from '../passwords.ts';
import type { SessionManager } from '../session.ts';

const GENERIC_FAILURE = 'The user name, password or API key is not right.';
const NO_USERS_YET =
  'Nobody has an account yet. Open the one-time setup link forgelink printed when it started (restart it for a new one), ' +
  'or create the first account with forgelink admin user add <name> --admin.';

/** The client's address as the socket saw it (in-process test requests have none). */
function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `/sign-in` and `/sign-out`. */
export function authRoutes(deps: WebDeps, sessions: SessionManager, assets: AssetUrls, publicOrigin: string) {
  const { users, apiKeys, signInLimiter, logger } = deps;

  function render(c: Context<WebEnv>, status: 200 | 401 | 403 | 429, view: Omit<SignInView, 'assets' | 'csrfToken'>) {
    return c.html(signInPage({ ...view, assets, csrfToken: sessions.signInToken(c) }), status);
  }

  /** A password, or an API key in the password field (then the user name may be empty, or must match). */
  async function authenticate(username: string, secret: string): Promise<User | null> {
    const candidate = secret.trim();
    if (looksLikeApiKey(candidate)) {
      const user = (await apiKeys.authenticate(candidate))?.user ?? null;
      return user !== null && (username === '' || username === user.name) ? user : null;
    }
    const found = username === '' ? null : await users.findPasswordHash(username);
    if (found === null || found.passwordHash === null) {
      await spendPasswordTime(secret);
      return null;
    }
    return (await verifyPassword(secret, found.passwordHash)) ? found.user : null;
  }

  return new Hono<WebEnv>()
    .get('/sign-in', async (c) => {
      const next = safeNext(c.req.query('next'));
      if (c.var.auth !== null) return c.redirect(next, 302);
      // Before the first account exists there is nobody to sign in as: point to the way in instead.
      if ((await users.listUsers()).length === 0) return render(c, 200, { next, username: '', message: { kind: 'info', text: NO_USERS_YET } });
      const message = c.var.sessionEnded || c.req.query('reason') === 'expired'
        ? { kind: 'info' as const, text: 'Your session has ended. Sign in again to continue.' }
        : c.req.query('reason') === 'signed-out'
          ? { kind: 'success' as const, text: 'You are signed out.' }
          : null;
      return render(c, 200, { next, username: '', message });
    })
    .post('/sign-in', async (c) => {
      const form = await c.req.parseBody();
      const username = fieldText(form.username).trim();
      const next = safeNext(fieldText(form.next));
      const cookie = sessions.signInCookie(c);
      if (!fromOwnOrigin(c, publicOrigin) || cookie === undefined || !tokensMatch(cookie, fieldText(form[CSRF_FIELD]) || undefined)) {
        return render(c, 403, {
          next,
          username,
          message: { kind: 'error', text: 'This sign-in form was too old or did not come from this page. Try again.' },
        });
      }
      const key = `${clientAddress(c)}\n${username.toLowerCase()}`;
      const waitMs = signInLimiter.retryAfterMs(key);
      if (waitMs > 0) {
        const minutes = Math.ceil(waitMs / 60_000);
        logger.warn({ username }, 'sign-in rate limited');
        c.header('Retry-After', String(Math.ceil(waitMs / 1000)));
        return render(c, 429, {
          next,
          username,
          message: { kind: 'error', text: `Too many attempts, try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` },
        });
      }
      const user = await authenticate(username, fieldText(form.password));
      if (user === null) {
        signInLimiter.fail(key);
        logger.info({ username }, 'sign-in refused');
        return render(c, 401, { next, username, message: { kind: 'error', text: GENERIC_FAILURE } });
      }
      signInLimiter.succeed(key);
      if (c.var.auth !== null) await sessions.end(c, c.var.auth.session);
      await sessions.start(c, user.id);
      sessions.clearSignInToken(c);
      logger.info({ userId: user.id }, 'signed in');
      return c.redirect(next, 303);
    })
    .post('/sign-out', async (c, next) => {
      if (c.var.auth === null) return c.redirect('/sign-in', 303);
      return requireCsrf(publicOrigin)(c, next);
    }, async (c) => {
      await sessions.end(c, c.var.auth?.session ?? null);
      return c.redirect('/sign-in?reason=signed-out', 303);
    });
}
