import { html } from 'hono/html';
import type { Auth } from './context.ts';
import { CSRF_FIELD } from './csrf.ts';

export type Html = ReturnType<typeof html>;

/** Asset URLs with a content hash, so browsers may cache them and still see a new version at once. */
export type AssetUrls = { css: string; js: string; icon: string };

export type Section = 'dashboard' | 'integrations' | 'runs' | 'keys' | 'secrets';

export type Chrome = { title: string; auth: Auth | null; assets: AssetUrls; section?: Section };

const NAV: readonly { section: Section; href: string; label: string }[] = [
  { section: 'dashboard', href: '/', label: 'Dashboard' },
  { section: 'integrations', href: '/integrations/gitlab', label: 'Integrations → GitLab' },
  { section: 'runs', href: '/runs', label: 'Runs' },
  { section: 'keys', href: '/settings/keys', label: 'API keys' },
  { section: 'secrets', href: '/settings/secrets', label: 'Secrets' },
];

/** The hidden field every dashboard form carries. */
export function csrfField(auth: Auth): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${auth.session.csrfToken}">`;
}

/** The page shell: no inline script or style anywhere, so the CSP can forbid both. */
export function page(chrome: Chrome, body: Html): Html {
  const { auth, assets } = chrome;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${chrome.title} · forgelink</title>
<link rel="stylesheet" href="${assets.css}">
<link rel="icon" href="${assets.icon}" type="image/svg+xml">
<script src="${assets.js}" defer></script>
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="topbar">
  <a class="brand" href="/">forgelink</a>
  ${auth === null
    ? ''
    : html`<nav aria-label="Main">
    <ul>
      ${NAV.map(
        (item) =>
          html`<li><a href="${item.href}"${item.section === chrome.section ? html` aria-current="page"` : ''}>${item.label}</a></li>`,
      )}
    </ul>
  </nav>
  <form class="signout" method="post" action="/sign-out">
    ${csrfField(auth)}
    <span class="who">Signed in as <strong>${auth.user.name}</strong></span>
    <button type="submit" class="link-button">Sign out</button>
  </form>`}
</header>
<main id="main" tabindex="-1">
${body}
</main>
</body>
</html>`;
}

export type NoticeKind = 'success' | 'error' | 'info';

/** A message at the top of a page; errors are announced at once by screen readers. */
export function notice(kind: NoticeKind, text: Html | string): Html {
  return html`<div class="notice notice-${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${text}</div>`;
}

/** `<p>` under a field naming what is wrong; the field points at it with aria-describedby. */
export function fieldError(id: string, message: string | undefined): Html | string {
  return message === undefined ? '' : html`<p class="field-error" id="${id}-error"><span class="visually-hidden">Error: </span>${message}</p>`;
}

/**
 * aria attributes of a field with an optional hint and error. The first field in error gets the focus when
 * the page loads, so a refused form opens where the problem is and a screen reader reads the message.
 */
export function describedBy(id: string, options: { hint?: boolean; error?: string | undefined; focus?: boolean }): Html | string {
  const ids = [...(options.hint ? [`${id}-hint`] : []), ...(options.error === undefined ? [] : [`${id}-error`])];
  const focus = options.focus ? html` autofocus` : '';
  if (ids.length === 0) return focus;
  return html` aria-describedby="${ids.join(' ')}"${options.error === undefined ? '' : html` aria-invalid="true"`}${focus}`;
}

/** The first of `fields` (in page order) that has an error. */
export function firstError<F extends string>(fields: readonly F[], errors: Partial<Record<F, string>>): F | undefined {
  return fields.find((field) => errors[field] !== undefined);
}
