import { OAUTH_SCOPES } from '../oauth/scopes.ts';

/** Escapes text for HTML content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function layout(title: string, body: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeHtml(title)} · GitLab</title>`,
    // No favicon request, so a browser logs no 404 for it.
    '<link rel="icon" href="data:,">',
    '</head>',
    `<body>${body}</body>`,
    '</html>',
    '',
  ].join('\n');
}

function hiddenFields(fields: Record<string, string | null>): string {
  return Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value ?? '')}">`)
    .join('\n');
}

/** app/views/devise/sessions/new: username or email and password, Rails' authenticity token. */
export function signInPage(input: { action: string; csrfToken: string; alert: string | null }): string {
  const alert = input.alert ? `<div class="flash-alert" role="alert" data-testid="alert">${escapeHtml(input.alert)}</div>` : '';
  return layout(
    'Sign in',
    `<main>
<h1>Sign in</h1>
${alert}
<form id="new_user" action="${escapeHtml(input.action)}" method="post">
${hiddenFields({ authenticity_token: input.csrfToken })}
<label for="user_login">Username or primary email</label>
<input type="text" id="user_login" name="user[login]" autocomplete="username" required data-testid="username-field">
<label for="user_password">Password</label>
<input type="password" id="user_password" name="user[password]" autocomplete="current-password" required data-testid="password-field">
<button type="submit" data-testid="sign-in-button">Sign in</button>
</form>
</main>`,
  );
}

export interface ConsentPageInput {
  action: string;
  csrfToken: string;
  applicationName: string;
  user: { name: string; username: string };
  scopes: string[];
  redirectHost: string | null;
  /** The hidden fields both forms send back (client_id, redirect_uri, state, response_type, scope, …). */
  fields: Record<string, string | null>;
}

/**
 * app/views/doorkeeper/authorizations/new.html.haml: who asks, which scopes, and two forms posting the
 * request back to /oauth/authorize; the second one is Rails' `method: :delete` (a hidden `_method`).
 */
export function consentPage(input: ConsentPageInput): string {
  const name = escapeHtml(input.applicationName);
  const scopes = input.scopes
    .map((scope) => {
      const text = OAUTH_SCOPES[scope];
      return `<li data-scope="${escapeHtml(scope)}"><strong>${escapeHtml(text?.title ?? scope)}</strong> <code>${escapeHtml(scope)}</code><p>${escapeHtml(text?.description ?? '')}</p></li>`;
    })
    .join('\n');
  const redirect = input.redirectHost
    ? `<p>You will be redirected to <strong>${escapeHtml(input.redirectHost)}</strong> after authorizing.</p>`
    : '';
  const fields = hiddenFields({ authenticity_token: input.csrfToken, ...input.fields });
  return layout(
    'Authorize application',
    `<main>
<h1>Authorize ${name} to use your account?</h1>
<p><strong>${name}</strong> is requesting access to your account on GitLab.</p>
<p>Signed in as <strong>${escapeHtml(input.user.name)}</strong> @${escapeHtml(input.user.username)}</p>
<p>This application will be able to:</p>
<ul class="scopes">
${scopes}
</ul>
<p>Make sure you trust <strong>${name}</strong> before authorizing.</p>
${redirect}
<form action="${escapeHtml(input.action)}" method="post" data-testid="authorize-form">
${fields}
<button type="submit" data-testid="authorization-button">Authorize ${name}</button>
</form>
<form action="${escapeHtml(input.action)}" method="post" data-testid="deny-form">
${hiddenFields({ _method: 'delete' })}
${fields}
<button type="submit" data-testid="deny-button">Deny</button>
</form>
</main>`,
  );
}

/** app/views/doorkeeper/authorizations/error.html.haml. */
export function authorizationErrorPage(description: string): string {
  return layout('An error has occurred', `<h1>An error has occurred</h1>\n<main role="main"><pre>${escapeHtml(description)}</pre></main>`);
}

/** app/views/doorkeeper/authorizations/redirect.html.haml: a link and a script instead of a 302. */
export function redirectPage(uri: string): string {
  return layout(
    'Redirecting',
    `<h3>Redirecting</h3>\n<div><a href="${escapeHtml(uri)}">Click here to redirect to ${escapeHtml(uri)}</a></div>\n<script>window.location = ${JSON.stringify(uri).replace(/</g, '\\u003c')};</script>`,
  );
}

/** public/422.html: what Rails answers when the authenticity token does not match. */
export function rejectedPage(): string {
  return layout(
    'The change you requested was rejected (422)',
    '<h1>422</h1>\n<h2>The change you requested was rejected.</h2>\n<p>Make sure you have access to the thing you tried to change.</p>',
  );
}

/** A stand-in for the dashboard at the site root. */
export function homePage(user: { name: string; username: string }): string {
  return layout('Projects', `<main><h1>Welcome to GitLab</h1><p>Signed in as <strong>${escapeHtml(user.name)}</strong> @${escapeHtml(user.username)}</p></main>`);
}
