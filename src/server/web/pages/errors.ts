import { html } from 'hono/html';
import type { Auth } from '../context.ts';
import { page, type AssetUrls, type Html } from '../layout.ts';

export type ErrorView = {
  assets: AssetUrls;
  auth: Auth | null;
  title: string;
  message: string;
  detail?: string | undefined;
  back?: { href: string; label: string };
};

/** A page that says what went wrong and where to go next. */
export function errorPage(view: ErrorView): Html {
  const back = view.back ?? (view.auth === null ? { href: '/sign-in', label: 'Sign in' } : { href: '/', label: 'Back to the dashboard' });
  return page(
    { title: view.title, auth: view.auth, assets: view.assets },
    html`<section class="narrow">
  <h1>${view.title}</h1>
  <p class="lead">${view.message}</p>
  ${view.detail === undefined ? '' : html`<p class="muted">${view.detail}</p>`}
  <p><a class="button" href="${back.href}">${back.label}</a></p>
</section>`,
  );
}
