import { Hono, type Context } from 'hono';
import { InputError, NotFoundError } from '../../../core/index.ts';
import { authOf } from '../auth-guard.ts';
import type { WebDeps, WebEnv } from '../context.ts';
import { errorField, fieldText } from '../form.ts';
import type { AssetUrls, NoticeKind } from '../layout.ts';
import { EMPTY_SECRET_FORM, secretsPage, type SecretField, type SecretFormValues } from '../pages/secrets.ts';

const FORM_FIELDS: readonly SecretField[] = ['name', 'value', 'hosts'];
const PAGE = '/settings/secrets';

type Message = { kind: NoticeKind; text: string } | null;

/** The notice a redirect back to the page asked for, in words of our own (the name is shown only if it is a valid one). */
function messageFor(notice: string | undefined, name: string | undefined): Message {
  const which = name !== undefined && /^[A-Z_][A-Z0-9_]{0,127}$/.test(name) ? name : 'The secret';
  switch (notice) {
    case 'created':
      return { kind: 'success', text: `Saved ${which}. Runs that name it get it as an environment variable.` };
    case 'replaced':
      return { kind: 'success', text: `Replaced the value of ${which}.` };
    case 'deleted':
      return { kind: 'success', text: `Deleted ${which}.` };
    default:
      return null;
  }
}

/** Hosts typed in one field, separated by spaces or commas. */
function hostList(text: string): string[] {
  return text.split(/[\s,]+/).filter((part) => part !== '');
}

/** Settings → Secrets; every handler works on the signed-in user's secrets only. */
export function secretPageRoutes(deps: WebDeps, assets: AssetUrls) {
  const { secrets } = deps;

  async function render(c: Context<WebEnv>, status: 200 | 400 | 404, form: SecretFormValues, message: Message = null) {
    const auth = authOf(c);
    return c.html(secretsPage({ assets, auth, secrets: await secrets.list(auth.user.id), form, message }), status);
  }

  return new Hono<WebEnv>()
    .get('/', (c) => render(c, 200, EMPTY_SECRET_FORM, messageFor(c.req.query('notice'), c.req.query('name'))))
    .post('/', async (c) => {
      const auth = authOf(c);
      const body = await c.req.parseBody();
      const values: SecretFormValues = { name: fieldText(body.name).trim(), hosts: fieldText(body.hosts), errors: {} };
      const hosts = hostList(values.hosts);
      try {
        const { created } = await secrets.set(auth.user.id, values.name, {
          value: fieldText(body.value),
          ...(hosts.length === 0 ? {} : { hosts }),
        });
        return c.redirect(`${PAGE}?notice=${created ? 'created' : 'replaced'}&name=${encodeURIComponent(values.name)}`, 303);
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        const field = errorField(FORM_FIELDS, error);
        return render(c, 400, { ...values, errors: { [field]: error.message } }, { kind: 'error', text: 'The secret was not saved: the form below says why.' });
      }
    })
    .post('/:name/delete', async (c) => {
      const name = c.req.param('name');
      try {
        await secrets.delete(authOf(c).user.id, name);
      } catch (error) {
        if (!(error instanceof NotFoundError || error instanceof InputError)) throw error;
        return render(c, 404, EMPTY_SECRET_FORM, { kind: 'error', text: error.message });
      }
      return c.redirect(`${PAGE}?notice=deleted&name=${encodeURIComponent(name)}`, 303);
    });
}
