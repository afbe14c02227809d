import { html } from 'hono/html';
import type { SecretView } from '../../../secrets/index.ts';
import type { Auth } from '../context.ts';
import { formatTime } from '../format.ts';
import { csrfField, describedBy, fieldError, firstError, notice, page, type AssetUrls, type Html, type NoticeKind } from '../layout.ts';

export type SecretField = 'name' | 'value' | 'hosts';
/** What the set form shows again after a refusal: never the value. */
export type SecretFormValues = { name: string; hosts: string; errors: Partial<Record<SecretField | 'form', string>> };

export const EMPTY_SECRET_FORM: SecretFormValues = { name: '', hosts: '', errors: {} };

export type SecretsView = {
  assets: AssetUrls;
  auth: Auth;
  secrets: SecretView[];
  form: SecretFormValues;
  message: { kind: NoticeKind; text: string } | null;
};

function secretsTable(secrets: SecretView[], auth: Auth): Html {
  return html`<table class="runs secrets">
  <caption class="visually-hidden">Your secrets</caption>
  <thead><tr><th scope="col">Name</th><th scope="col">Hosts</th><th scope="col">Created</th><th scope="col">Updated</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
  <tbody>
    ${secrets.map(
      (secret) => html`<tr id="secret-${secret.name}">
      <th scope="row"><code>${secret.name}</code></th>
      <td>${secret.hosts.length === 0 ? '—' : secret.hosts.join(', ')}</td>
      <td>${formatTime(secret.createdAt)}</td>
      <td>${formatTime(secret.updatedAt)}</td>
      <td>${secret.lastUsedAt === null ? 'never' : formatTime(secret.lastUsedAt)}</td>
      <td>
        <details class="confirm">
          <summary>Delete…</summary>
          <div class="confirm-body">
            <p>Delete <strong>${secret.name}</strong>? forgelink forgets its value; runs that ask for it are refused until you set it again.</p>
            <form method="post" action="/settings/secrets/${encodeURIComponent(secret.name)}/delete">
              ${csrfField(auth)}
              <button type="submit" class="danger">Yes, delete ${secret.name}</button>
            </form>
          </div>
        </details>
      </td>
    </tr>`,
    )}
  </tbody>
</table>`;
}

/** Name, value (a password field, never refilled), optional hosts. */
function setForm(values: SecretFormValues, auth: Auth): Html {
  const { errors } = values;
  const focus = firstError(['name', 'value', 'hosts'] as const, errors);
  return html`<form method="post" action="/settings/secrets" class="stack" id="secret-form" novalidate>
  ${csrfField(auth)}
  ${errors.form === undefined ? '' : notice('error', errors.form)}
  <div class="field${errors.name === undefined ? '' : ' has-error'}">
    <label for="name">Name</label>
    <input id="name" name="name" type="text" autocomplete="off" spellcheck="false" maxlength="128" placeholder="ANTHROPIC_API_KEY" value="${values.name}" required${describedBy('name', { hint: true, error: errors.name, focus: focus === 'name' })}>
    <p class="hint" id="name-hint">The environment variable a run gets: upper-case letters, digits and underscores. Names that change how the sandbox works (<code>PATH</code>, <code>HOME</code>, <code>GITLAB_*</code>, <code>GIT_*</code>, <code>LD_*</code>, proxies…) are refused. Setting an existing name replaces its value.</p>
    ${fieldError('name', errors.name)}
  </div>
  <div class="field${errors.value === undefined ? '' : ' has-error'}">
    <label for="value">Value</label>
    <input id="value" name="value" type="password" autocomplete="off" spellcheck="false" required${describedBy('value', { hint: true, error: errors.value, focus: focus === 'value' })}>
    <p class="hint" id="value-hint">Sealed at once; it is never shown again. At least 8 characters.</p>
    ${fieldError('value', errors.value)}
  </div>
  <div class="field${errors.hosts === undefined ? '' : ' has-error'}">
    <label for="hosts">Hosts <span class="muted">(optional)</span></label>
    <input id="hosts" name="hosts" type="text" autocomplete="off" spellcheck="false" placeholder="api.anthropic.com:443" value="${values.hosts}"${describedBy('hosts', { hint: true, error: errors.hosts, focus: focus === 'hosts' })}>
    <p class="hint" id="hosts-hint">Where the secret is meant to be sent, separated by spaces or commas (<code>host[:port]</code>, port 443 by default). Left empty when replacing, the secret keeps its hosts.</p>
    ${fieldError('hosts', errors.hosts)}
  </div>
  <button type="submit" class="primary">Save secret</button>
</form>`;
}

/** Settings → Secrets: the user's named secrets (never their values), setting one, deleting one. */
export function secretsPage(view: SecretsView): Html {
  const { secrets, auth } = view;
  return page(
    { title: 'Secrets', auth, assets: view.assets, section: 'secrets' },
    html`<h1>Secrets</h1>
${view.message === null ? '' : notice(view.message.kind, view.message.text)}
<p>Keys your agents need, such as <code>ANTHROPIC_API_KEY</code>. A run that names a secret (<code>forgelink run --secret NAME</code>) gets it as an environment variable; forgelink decrypts it only when the run starts, records that in the audit trail, and redacts the value from the run's log.</p>
<section aria-labelledby="secrets-title">
  <h2 id="secrets-title">Your secrets <span class="count">${secrets.length}</span></h2>
  ${secrets.length === 0 ? html`<p class="empty">No secrets yet.</p>` : secretsTable(secrets, auth)}
</section>
<section aria-labelledby="set-title" class="panel">
  <h2 id="set-title">Set a secret</h2>
  ${setForm(view.form, auth)}
</section>`,
  );
}
