import { html } from 'hono/html';
import { API_KEY_NAME_MAX, type ApiKeyView, type CreatedApiKey } from '../../../core/index.ts';
import type { Auth } from '../context.ts';
import { formatTime } from '../format.ts';
import { csrfField, describedBy, fieldError, notice, page, type AssetUrls, type Html, type NoticeKind } from '../layout.ts';

export type KeysView = {
  assets: AssetUrls;
  auth: Auth;
  keys: ApiKeyView[];
  /** The key just made: its only appearance anywhere. */
  created: CreatedApiKey | null;
  form: { name: string; errors: { name?: string; form?: string } };
  message: { kind: NoticeKind; text: string } | null;
};

function createdPanel(created: CreatedApiKey): Html {
  return html`<section class="panel new-key" aria-labelledby="new-key-title">
  <h2 id="new-key-title">Your new key “${created.name}”</h2>
  <p><strong>Copy it now: it is shown only this once.</strong> forgelink keeps just a hash of it; if you lose it, create another and revoke this one.</p>
  <div class="inline">
    <label for="new-key" class="visually-hidden">The new API key</label>
    <input id="new-key" type="text" class="mono" readonly spellcheck="false" autocomplete="off" value="${created.key}" aria-describedby="new-key-hint" autofocus>
    <button type="button" data-copy="new-key" hidden>Copy</button>
  </div>
  <p class="hint" id="new-key-hint">Use it with <code>forgelink login</code> (paste it when asked), as <code>FORGELINK_API_KEY</code>, or in <code>Authorization: Bearer …</code>.</p>
  <p class="hint" data-copy-status="new-key" role="status"></p>
</section>`;
}

function createForm(view: KeysView): Html {
  const { errors } = view.form;
  return html`<form method="post" action="/settings/keys" class="stack" novalidate>
  ${csrfField(view.auth)}
  ${errors.form === undefined ? '' : notice('error', errors.form)}
  <div class="field${errors.name === undefined ? '' : ' has-error'}">
    <label for="name">Name</label>
    <input id="name" name="name" type="text" maxlength="${API_KEY_NAME_MAX}" required value="${view.form.name}" placeholder="laptop, ci-runner, agent platform"${describedBy('name', { hint: true, error: errors.name, focus: errors.name !== undefined })}>
    <p class="hint" id="name-hint">What the key is for, so you know which one to revoke later: 1–${API_KEY_NAME_MAX} characters, different from your other keys' names.</p>
    ${fieldError('name', errors.name)}
  </div>
  <button type="submit" class="primary">Create key</button>
</form>`;
}

function revokeControl(view: KeysView, key: ApiKeyView): Html {
  return html`<details class="confirm">
    <summary>Revoke…</summary>
    <div class="confirm-body">
      <p>Revoke <strong>${key.name}</strong>? Whatever uses it (the CLI, a script, an agent platform) is refused from its next request on. This cannot be undone.</p>
      <form method="post" action="/settings/keys/${key.id}/revoke">
        ${csrfField(view.auth)}
        <button type="submit" class="danger">Yes, revoke ${key.name}</button>
      </form>
    </div>
  </details>`;
}

function keysTable(view: KeysView): Html {
  if (view.keys.length === 0) return html`<p class="empty">You have no API keys. Create one above to use the CLI or the API.</p>`;
  return html`<div class="table-scroll">
<table class="runs keys">
  <caption class="visually-hidden">Your API keys, oldest first</caption>
  <thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Id</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
  <tbody>
    ${view.keys.map(
      (key) => html`<tr>
      <th scope="row">${key.name}</th>
      <td data-label="Key"><code>${key.prefix}…</code></td>
      <td data-label="Id"><code>${key.id}</code></td>
      <td data-label="Created">${formatTime(key.createdAt)}</td>
      <td data-label="Last used">${key.lastUsedAt === null ? 'never' : formatTime(key.lastUsedAt)}</td>
      <td>${revokeControl(view, key)}</td>
    </tr>`,
    )}
  </tbody>
</table>
</div>`;
}

/** Settings → API keys: the user's keys, a form to make one, and revoking. */
export function keysPage(view: KeysView): Html {
  return page(
    { title: 'API keys', auth: view.auth, assets: view.assets, section: 'keys' },
    html`<h1>API keys</h1>
${view.message === null ? '' : notice(view.message.kind, view.message.text)}
<p class="lead">The CLI, scripts and agent platforms sign in with an API key. Make one per machine or tool, so you can revoke one without touching the others.</p>
${view.created === null ? '' : createdPanel(view.created)}
<section aria-labelledby="create-title" class="panel">
  <h2 id="create-title">Create a key</h2>
  ${createForm(view)}
</section>
<section aria-labelledby="keys-title">
  <h2 id="keys-title">Your keys</h2>
  ${keysTable(view)}
  <p class="hint">Last use is recorded to the minute. Revoked keys are not listed; the audit log keeps who made and revoked each key.</p>
</section>`,
  );
}
