import { Hono, type Context } from 'hono';
import { ConflictError, InputError, type CreatedApiKey } from '../../../core/index.ts';
import { authOf } from '../auth-guard.ts';
import type { WebDeps, WebEnv } from '../context.ts';
import { errorField, fieldText } from '../form.ts';
import type { AssetUrls } from '../layout.ts';
import { keysPage, type KeysView } from '../pages/keys.ts';

/** `/settings/keys`: the signed-in user's API keys. */
export function keyPageRoutes(deps: WebDeps, assets: AssetUrls) {
  const { apiKeys } = deps;

  async function render(c: Context<WebEnv>, status: 200 | 201 | 400 | 409, view: Pick<KeysView, 'created' | 'form' | 'message'>) {
    const auth = authOf(c);
    return c.html(keysPage({ assets, auth, keys: await apiKeys.list(auth.user.id), ...view }), status);
  }

  return new Hono<WebEnv>()
    .get('/', (c) => {
      // Only an id is echoed back, so a crafted link cannot put words on the page.
      const revoked = c.req.query('revoked');
      const message =
        revoked !== undefined && /^key_[0-9a-f]{20}$/.test(revoked)
          ? { kind: 'success' as const, text: `Revoked ${revoked}: anything still using it is refused from now on.` }
          : null;
      return render(c, 200, { created: null, form: { name: '', errors: {} }, message });
    })
    .post('/', async (c) => {
      const auth = authOf(c);
      const name = fieldText((await c.req.parseBody()).name);
      let created: CreatedApiKey;
      try {
        created = await apiKeys.create(auth.user.id, name, { actor: auth.user.id, via: 'dashboard' });
      } catch (error) {
        if (!(error instanceof InputError || error instanceof ConflictError)) throw error;
        const field = errorField(['name'] as const, error);
        return render(c, error instanceof InputError ? 400 : 409, { created: null, form: { name, errors: { [field]: error.message } }, message: null });
      }
      // Rendered, not redirected: the key exists only in this answer (pages are never cached, Cache-Control: no-store).
      return render(c, 201, { created, form: { name: '', errors: {} }, message: null });
    })
    .post('/:id/revoke', async (c) => {
      const auth = authOf(c);
      const id = c.req.param('id');
      await apiKeys.revoke(auth.user.id, id, { actor: auth.user.id, via: 'dashboard' });
      return c.redirect(`/settings/keys?revoked=${encodeURIComponent(id)}`, 303);
    });
}
