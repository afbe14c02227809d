import { html } from 'hono/html';
import { CSRF_FIELD } from '../csrf.ts';
import { notice, page, type AssetUrls, type Html } from '../layout.ts';

export type SignInView = {
  assets: AssetUrls;
  csrfToken: string;
  next: string;
  username: string;
  /** What to tell the user above the form. */
  message: { kind: 'error' | 'info' | 'success'; text: string } | null;
};

export function signInPage(view: SignInView): Html {
  return page(
    { title: 'Sign in', auth: null, assets: view.assets },
    html`<section class="narrow panel">
  <h1>Sign in to forgelink</h1>
  ${view.message === null ? '' : notice(view.message.kind, view.message.text)}
  <form method="post" action="/sign-in" class="stack">
    <input type="hidden" name="${CSRF_FIELD}" value="${view.csrfToken}">
    <input type="hidden" name="next" value="${view.next}">
    <div class="field">
      <label for="username">User name</label>
      <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" value="${view.username}" aria-describedby="username-hint">
      <p class="hint" id="username-hint">May be left empty when you sign in with an API key.</p>
    </div>
    <div class="field">
      <label for="password">Password or API key</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required>
    </div>
    <button type="submit" class="primary">Sign in</button>
  </form>
  <p class="hint after-form">No password yet? An administrator sets one with <code>forgelink admin user set-password &lt;name&gt;</code>; until then your API key (<code>flk_…</code>) works here too.</p>
</section>`,
  );
}
