import { Hono, type Context } from 'hono';
import { ConflictError, ForgelinkError, InputError, NotAllowedError, SealedTokenError, UpstreamError, type ConnectionView } from '../../../core/index.ts';
import { toHttpError } from '../../errors.ts';
import { authOf } from '../auth-guard.ts';
import type { WebDeps, WebEnv } from '../context.ts';
import { errorField, fieldText } from '../form.ts';
import type { AssetUrls, NoticeKind } from '../layout.ts';
import { doctorPage } from '../pages/doctor.ts';
import { errorPage } from '../pages/errors.ts';
import { integrationsPage } from '../pages/integrations.ts';
import { EMPTY_SELF_HOSTED, type SelfHostedField, type SelfHostedValues } from '../pages/self-hosted-form.ts';
import { accountText } from '../pages/connection-card.ts';

const FORM_FIELDS: readonly SelfHostedField[] = ['baseUrl', 'token', 'caPem', 'label'];
const MAX_CA_FILE_BYTES = 256 * 1024;
const PAGE = '/integrations/gitlab';
const NOT_CONNECTED = { kind: 'error', text: 'The instance was not connected: the form below says why, next to the field.' } as const;

type Message = { kind: NoticeKind; text: string } | null;

/** The notice a redirect back to the page asked for (`?notice=…&connection=…`), in words of our own. */
function messageFor(notice: string | undefined, connection: ConnectionView | undefined): Message {
  switch (notice) {
    case 'connected':
      return connection === undefined
        ? null
        : { kind: 'success', text: `Connected ${connection.label}: actions will be attributed to ${accountText(connection)}.` };
    case 'checked':
      return connection === undefined
        ? null
        : { kind: connection.status === 'active' ? 'success' : 'error', text: `Checked ${connection.label} with GitLab just now: ${connection.status}.` };
    case 'disconnected':
      return { kind: 'success', text: 'Disconnected. forgelink no longer holds that token; it stays valid at GitLab until you revoke it there.' };
    case 'disconnected-revoked':
      return { kind: 'success', text: 'Disconnected. forgelink deleted the token and GitLab revoked the authorization.' };
    case 'disconnected-unrevoked':
      return {
        kind: 'error',
        text: "Disconnected: forgelink deleted the token, but GitLab did not confirm the revocation. Revoke forgelink's access in GitLab under User Settings → Applications.",
      };
    default:
      return null;
  }
}

/** Why an OAuth round trip failed, in words a user can act on (the flow's codes: GitLabOAuthFlow.finish). */
function oauthFailure(error: ForgelinkError): { title: string; message: string } {
  switch (error.code) {
    case 'access_denied':
      return { title: 'GitLab access was not granted', message: 'The authorization was declined at GitLab, so nothing was connected.' };
    case 'invalid_state':
      return {
        title: 'This authorization cannot be finished',
        message:
          'The way back from GitLab was already used, has expired, or was started in another browser session; a forged callback looks the same. Nothing was connected. Start again with Connect Account.',
      };
    case 'exchange_failed':
      return { title: 'GitLab did not complete the connection', message: 'GitLab did not exchange the authorization code for a token. Nothing was connected; try again.' };
    default:
      return { title: 'The connection could not be made', message: 'Nothing was connected.' };
  }
}

/** Integrations → GitLab and its actions; every handler works on the signed-in user's connections only. */
export function integrationRoutes(deps: WebDeps, assets: AssetUrls) {
  const { connections, oauthFlow, clock } = deps;

  async function render(c: Context<WebEnv>, status: 200 | 400 | 502, form: SelfHostedValues, message: Message = null) {
    const auth = authOf(c);
    const list = await connections.list(auth.user.id);
    return c.html(
      integrationsPage({ assets, auth, now: clock.now(), connections: list, oauthInstances: oauthFlow?.instances() ?? [], form, message }),
      status,
    );
  }

  function failure(c: Context<WebEnv>, status: 400 | 404 | 409 | 502, title: string, message: string, detail?: string) {
    return c.html(errorPage({ assets, auth: authOf(c), title, message, detail, back: { href: PAGE, label: 'Back to Integrations → GitLab' } }), status);
  }

  return new Hono<WebEnv>()
    .get('/', async (c) => {
      const auth = authOf(c);
      const id = c.req.query('connection');
      const connection = id === undefined ? undefined : (await connections.list(auth.user.id)).find((item) => item.id === id);
      return render(c, 200, EMPTY_SELF_HOSTED, messageFor(c.req.query('notice'), connection));
    })
    .get('/connect', async (c) => {
      const auth = authOf(c);
      if (oauthFlow === null) {
        return failure(c, 404, 'Connect Account is not set up', 'No OAuth application is configured on this forgelink — ask the operator (FORGELINK_GITLAB_OAUTH_APPS). A personal access token works meanwhile.');
      }
      try {
        const { authorizeUrl } = await oauthFlow.start({ userId: auth.user.id, sessionId: auth.session.id, baseUrl: c.req.query('baseUrl') ?? '' });
        return c.redirect(authorizeUrl, 302);
      } catch (error) {
        if (!(error instanceof InputError || error instanceof NotAllowedError)) throw error;
        return failure(c, 400, 'Connect Account cannot start', error.message);
      }
    })
    .get('/callback', async (c) => {
      const auth = authOf(c);
      if (oauthFlow === null) return failure(c, 404, 'Connect Account is not set up', 'No OAuth application is configured on this forgelink.');
      try {
        const connection = await oauthFlow.finish({ userId: auth.user.id, sessionId: auth.session.id, query: c.req.query() });
        return c.redirect(`${PAGE}?notice=connected&connection=${encodeURIComponent(connection.id)}#${connection.id}`, 303);
      } catch (error) {
        if (!(error instanceof ForgelinkError)) throw error;
        const { status } = toHttpError(error);
        const { title, message } = oauthFailure(error);
        return failure(c, status === 400 ? 400 : 502, title, message, error.message);
      }
    })
    // The forms below post to these addresses; opening one (a reload after a refused form, a pasted link)
    // shows the page the form is on rather than a 404.
    .get('/connections', (c) => c.redirect(PAGE, 302))
    .get('/connections/:id/doctor', (c) => c.redirect(`${PAGE}#${encodeURIComponent(c.req.param('id'))}`, 302))
    .post('/connections', async (c) => {
      const auth = authOf(c);
      const body = await c.req.parseBody();
      const values: SelfHostedValues = { baseUrl: fieldText(body.baseUrl), caPem: fieldText(body.caPem), label: fieldText(body.label), errors: {} };
      const file = body.caFile;
      if (file instanceof File && file.size > 0) {
        if (file.size > MAX_CA_FILE_BYTES) {
          return render(c, 400, { ...values, errors: { caPem: `The CA file is larger than ${MAX_CA_FILE_BYTES / 1024} KiB; choose the CA certificate itself.` } }, NOT_CONNECTED);
        }
        // The file wins over the textarea, and goes back into it if the form is refused (a file input cannot be refilled).
        values.caPem = await file.text();
      }
      try {
        const connection = await connections.connect(auth.user.id, {
          baseUrl: values.baseUrl,
          token: fieldText(body.token),
          caPem: values.caPem.trim() === '' ? undefined : values.caPem,
          label: values.label,
        });
        return c.redirect(`${PAGE}?notice=connected&connection=${encodeURIComponent(connection.id)}#${connection.id}`, 303);
      } catch (error) {
        if (error instanceof InputError || error instanceof ConflictError || error instanceof UpstreamError) {
          const field = errorField(FORM_FIELDS, error);
          return render(c, error instanceof UpstreamError ? 502 : 400, { ...values, errors: { [field]: error.message } }, NOT_CONNECTED);
        }
        throw error;
      }
    })
    .post('/connections/:id/check', async (c) => {
      const id = c.req.param('id');
      try {
        await connections.check(authOf(c).user.id, id);
      } catch (error) {
        // The check recorded the connection as invalid with what to do; its card says so.
        if (!(error instanceof SealedTokenError)) throw error;
      }
      return c.redirect(`${PAGE}?notice=checked&connection=${encodeURIComponent(id)}#${id}`, 303);
    })
    .post('/connections/:id/doctor', async (c) => {
      if (deps.doctor === undefined) return failure(c, 404, 'Doctor is not available', 'This forgelink server runs without the doctor.');
      const auth = authOf(c);
      const connection = await connections.get(auth.user.id, c.req.param('id'));
      const report = await deps.doctor.run(auth.user.id, connection.id);
      return c.html(doctorPage({ assets, auth, label: connection.label, report }));
    })
    .post('/connections/:id/disconnect', async (c) => {
      const { revocation } = await connections.disconnect(authOf(c).user.id, c.req.param('id'));
      return c.redirect(`${PAGE}?notice=${revocation.status === 'failed' ? 'disconnected-unrevoked' : revocation.status === 'revoked' ? 'disconnected-revoked' : 'disconnected'}`, 303);
    })
    .get('/connections/:id/projects', async (c) => {
      // JSON for app.js's project picker; errors as the API words them.
      try {
        const projects = await connections.projects(authOf(c).user.id, c.req.param('id'), c.req.query('search') || undefined);
        return c.json({ projects: projects.map((project) => ({ id: project.id, pathWithNamespace: project.pathWithNamespace, defaultBranch: project.defaultBranch })) });
      } catch (error) {
        const { status, body } = toHttpError(error);
        return c.json(body, status);
      }
    });
}
