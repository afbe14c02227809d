import { html } from 'hono/html';
import { CSRF_FIELD } from '../csrf.ts';
import { describedBy, fieldError, firstError, notice, page, type AssetUrls, type Html } from '../layout.ts';
import { MIN_PASSWORD_LENGTH } from '../passwords.ts';

export type SetupField = 'username' | 'password' | 'confirm';

export type SetupView = {
  assets: AssetUrls;
  csrfToken: string;
  /** The one-time token from the link, carried by the form. */
  token: string;
  username: string;
  errors: Partial<Record<SetupField | 'form', string>>;
};

/** Where a person who cannot use the link gets another way in; `forgelink` is ./bin/forgelink in a clone. */
const ANOTHER_WAY = html`<ul>
    <li>Restart forgelink (<code>npm start</code> or <code>forgelink serve</code>): while there are no users, each start prints a new one-time link.</li>
    <li>Or, on the machine forgelink runs on, create the account with <code>forgelink admin user add &lt;name&gt; --admin</code> (<code>./bin/forgelink</code> in the forgelink folder) and then sign in.</li>
  </ul>`;

/** The first person's form: a user name and a password, and they are the administrator. */
export function setupPage(view: SetupView): Html {
  const { errors } = view;
  const focus = firstError(['username', 'password', 'confirm'] as const, errors) ?? 'username';
  return page(
    { title: 'Set up forgelink', auth: null, assets: view.assets },
    html`<section class="narrow panel">
  <h1>Set up forgelink</h1>
  <p>Choose the user name and password of the first account. It becomes the administrator, and you are signed in right away.</p>
  ${errors.form === undefined ? '' : notice('error', errors.form)}
  <form method="post" action="/setup" class="stack" novalidate>
    <input type="hidden" name="${CSRF_FIELD}" value="${view.csrfToken}">
    <input type="hidden" name="token" value="${view.token}">
    <div class="field${errors.username === undefined ? '' : ' has-error'}">
      <label for="username">User name</label>
      <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="64" value="${view.username}" required${describedBy('username', { hint: true, error: errors.username, focus: focus === 'username' })}>
      <p class="hint" id="username-hint">1–64 letters, digits, dots, dashes or underscores.</p>
      ${fieldError('username', errors.username)}
    </div>
    <div class="field${errors.password === undefined ? '' : ' has-error'}">
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="new-password" required${describedBy('password', { hint: true, error: errors.password, focus: focus === 'password' })}>
      <p class="hint" id="password-hint">At least ${MIN_PASSWORD_LENGTH} characters.</p>
      ${fieldError('password', errors.password)}
    </div>
    <div class="field${errors.confirm === undefined ? '' : ' has-error'}">
      <label for="confirm">Password again</label>
      <input id="confirm" name="confirm" type="password" autocomplete="new-password" required${describedBy('confirm', { error: errors.confirm, focus: focus === 'confirm' })}>
      ${fieldError('confirm', errors.confirm)}
    </div>
    <button type="submit" class="primary">Create the administrator and sign in</button>
  </form>
</section>`,
  );
}

/** A link that cannot be used (again): what happened, and how to get a working one. */
export function setupRefusedPage(view: { assets: AssetUrls; title: string; message: string }): Html {
  return page(
    { title: view.title, auth: null, assets: view.assets },
    html`<section class="narrow panel">
  <h1>${view.title}</h1>
  <p class="lead">${view.message}</p>
  <p>To get a working link:</p>
  ${ANOTHER_WAY}
</section>`,
  );
}

/** Setup is over once anyone has an account: the page says where to go instead. */
export function setupDonePage(view: { assets: AssetUrls }): Html {
  return page(
    { title: 'Already set up', auth: null, assets: view.assets },
    html`<section class="narrow panel">
  <h1>forgelink is already set up</h1>
  <p class="lead">An account exists, so this setup link no longer works. Sign in with your account; an administrator adds more people with <code>forgelink admin user add &lt;name&gt;</code>.</p>
  <p><a class="button" href="/sign-in">Sign in</a></p>
</section>`,
  );
}
