import { Hono, type Context } from 'hono';
import { newId, userNameProblem } from '../../../core/index.ts';
import type { WebDeps, WebEnv } from '../context.ts';
import { CSRF_FIELD, fromOwnOrigin, tokensMatch } from '../csrf.ts';
import { fieldText } from '../form.ts';
import type { AssetUrls } from '../layout.ts';
import { setupDonePage, setupPage, setupRefusedPage, type SetupView } from '../pages/setup.ts';
import { hashPassword, passwordProblem } from '../passwords.ts';
import type { SessionManager } from '../session.ts';
import type { SetupLinks, SetupTokenState } from '../setup-link.ts';

const REFUSALS: Record<Exclude<SetupTokenState, 'valid'>, { status: 403 | 410; title: string; message: string }> = {
  used: { status: 410, title: 'This setup link was already used', message: 'A setup link works once.' },
  expired: { status: 410, title: 'This setup link has expired', message: 'A setup link works for one hour after forgelink starts.' },
  wrong: {
    status: 403,
    title: 'This setup link does not work',
    message: 'It is incomplete, or it was printed by an earlier start of forgelink: each start makes a new link and the old ones stop working.',
  },
};

/**
 * `/setup?token=…`: the first start's one-time link (docs/security.md, "First start"). The first person picks a
 * user name and password, becomes the administrator and is signed in. Refused as soon as any user exists.
 */
export function setupRoutes(deps: WebDeps, links: SetupLinks, sessions: SessionManager, assets: AssetUrls, publicOrigin: string) {
  const { users, logger } = deps;

  const hasUsers = async () => (await users.listUsers()).length > 0;

  function form(c: Context<WebEnv>, status: 200 | 400 | 403, view: Omit<SetupView, 'assets' | 'csrfToken'>) {
    return c.html(setupPage({ ...view, assets, csrfToken: sessions.signInToken(c) }), status);
  }

  function refused(c: Context<WebEnv>, state: Exclude<SetupTokenState, 'valid'>) {
    const { status, title, message } = REFUSALS[state];
    return c.html(setupRefusedPage({ assets, title, message }), status);
  }

  return new Hono<WebEnv>()
    .get('/setup', async (c) => {
      if (await hasUsers()) return c.html(setupDonePage({ assets }), 403);
      const token = c.req.query('token') ?? '';
      const state = links.check(token);
      if (state !== 'valid') return refused(c, state);
      return form(c, 200, { token, username: '', errors: {} });
    })
    .post('/setup', async (c) => {
      const body = await c.req.parseBody();
      const token = fieldText(body.token);
      const username = fieldText(body.username).trim();
      if (await hasUsers()) return c.html(setupDonePage({ assets }), 403);
      const state = links.check(token);
      if (state !== 'valid') return refused(c, state);
      const cookie = sessions.signInCookie(c);
      if (!fromOwnOrigin(c, publicOrigin) || cookie === undefined || !tokensMatch(cookie, fieldText(body[CSRF_FIELD]) || undefined)) {
        return form(c, 403, { token, username, errors: { form: 'This form was too old or did not come from this page. Fill it in again.' } });
      }
      const password = fieldText(body.password);
      const errors: SetupView['errors'] = {};
      const nameProblem = userNameProblem(username);
      if (nameProblem !== null) errors.username = username === '' ? 'Choose a user name.' : nameProblem;
      const problem = passwordProblem(password);
      if (problem !== null) errors.password = problem;
      if (fieldText(body.confirm) !== password) errors.confirm = 'The two passwords are not the same.';
      if (Object.keys(errors).length > 0) return form(c, 400, { token, username, errors });

      // Synchronous: of two submissions with this token, only one gets past here.
      const consumed = links.consume(token);
      if (consumed !== 'valid') return refused(c, consumed);
      const passwordHash = await hashPassword(password);
      const user = await users.createUser({
        id: newId('usr'),
        name: username,
        isAdmin: true,
        // No API key: one nobody was shown would only clutter the key list; the person creates one when they need it.
        createdAt: deps.clock.now().toISOString(),
      });
      await users.setPasswordHash(user.id, passwordHash);
      await sessions.start(c, user.id);
      sessions.clearSignInToken(c);
      logger.info({ userId: user.id, username: user.name }, 'first administrator created through the setup link');
      return c.redirect('/', 303);
    });
}
