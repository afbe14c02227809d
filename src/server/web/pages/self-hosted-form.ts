import { html } from 'hono/html';
import { normaliseBaseUrl, tokenCreationUrl } from '../../../core/index.ts';
import { DEFAULT_BASE_URL } from '../../../connections/index.ts';
import type { Auth } from '../context.ts';
import { csrfField, describedBy, fieldError, firstError, notice, type Html } from '../layout.ts';

export type SelfHostedField = 'baseUrl' | 'token' | 'caPem' | 'label';

/** What the user typed, back after a refusal. Never the token. */
export type SelfHostedValues = {
  baseUrl: string;
  caPem: string;
  label: string;
  errors: Partial<Record<SelfHostedField | 'form', string>>;
};

export const EMPTY_SELF_HOSTED: SelfHostedValues = { baseUrl: '', caPem: '', label: '', errors: {} };

const TOKEN_NAME = 'forgelink agent';
/** The seed's guidance: the narrowest scopes for an agent that clones and pushes, or a bot account's. */
export const TOKEN_PRESETS = [
  { scopes: ['read_repository', 'write_repository'], text: 'for an agent that only clones and pushes' },
  { scopes: ['api', 'read_user'], text: 'for a dedicated bot account (merge requests and issues through the API)' },
] as const;

function linkBase(typed: string): string {
  if (typed.trim() === '') return DEFAULT_BASE_URL;
  try {
    return normaliseBaseUrl(typed, { allowHttp: true });
  } catch {
    return DEFAULT_BASE_URL;
  }
}

/** Links to GitLab's token page, prefilled; app.js re-points them as the instance URL is typed. */
function tokenLinks(typedBaseUrl: string): Html {
  const base = linkBase(typedBaseUrl);
  return html`<ul class="token-links">
    ${TOKEN_PRESETS.map((preset) => {
      const url = tokenCreationUrl(base, TOKEN_NAME, preset.scopes);
      const query = url.slice(url.indexOf('?') + 1);
      return html`<li><a href="${url}" data-token-query="${query}" target="_blank" rel="noopener noreferrer">Create a token with ${preset.scopes.join(' + ')}</a> ${preset.text}</li>`;
    })}
  </ul>`;
}

/** Instance URL, token (a password field, never refilled), optional CA (paste or file), label. */
export function selfHostedForm(values: SelfHostedValues, auth: Auth): Html {
  const { errors } = values;
  const focus = firstError(['baseUrl', 'token', 'caPem', 'label'] as const, errors);
  return html`<form method="post" action="/integrations/gitlab/connections" enctype="multipart/form-data" class="stack" id="self-hosted-form" novalidate>
  ${csrfField(auth)}
  ${errors.form === undefined ? '' : notice('error', errors.form)}
  <div class="field${errors.baseUrl === undefined ? '' : ' has-error'}">
    <label for="baseUrl">Instance URL</label>
    <input id="baseUrl" name="baseUrl" type="url" inputmode="url" autocomplete="url" spellcheck="false" placeholder="https://gitlab.example.com" value="${values.baseUrl}" required${describedBy('baseUrl', { hint: true, error: errors.baseUrl, focus: focus === 'baseUrl' })}>
    <p class="hint" id="baseUrl-hint">With its subpath if GitLab lives under one (<code>https://example.com/gitlab</code>). <code>/api/v4</code> and trailing slashes are fine.</p>
    ${fieldError('baseUrl', errors.baseUrl)}
  </div>
  <div class="field${errors.token === undefined ? '' : ' has-error'}">
    <label for="token">Personal access token</label>
    <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required${describedBy('token', { hint: true, error: errors.token, focus: focus === 'token' })}>
    <p class="hint" id="token-hint">A personal, project or group access token. It is stored encrypted and never shown again.</p>
    ${fieldError('token', errors.token)}
    ${tokenLinks(values.baseUrl)}
  </div>
  <fieldset class="field${errors.caPem === undefined ? '' : ' has-error'}"${describedBy('caPem', { hint: true, error: errors.caPem })}>
    <legend>CA certificate <span class="muted">(optional)</span></legend>
    <p class="hint" id="caPem-hint">Only when the instance's HTTPS certificate comes from your organisation's own certificate authority: paste the CA's PEM, or choose the file.</p>
    <label for="caPem">Paste PEM</label>
    <textarea id="caPem" name="caPem" rows="4" spellcheck="false" placeholder="-----BEGIN CERTIFICATE-----"${focus === 'caPem' ? html` autofocus` : ''}>${values.caPem}</textarea>
    <label for="caFile">or choose a file</label>
    <input id="caFile" name="caFile" type="file" accept=".pem,.crt,.cer,application/x-pem-file">
    ${fieldError('caPem', errors.caPem)}
  </fieldset>
  <div class="field${errors.label === undefined ? '' : ' has-error'}">
    <label for="label">Label <span class="muted">(optional)</span></label>
    <input id="label" name="label" type="text" maxlength="100" value="${values.label}"${describedBy('label', { hint: true, error: errors.label, focus: focus === 'label' })}>
    <p class="hint" id="label-hint">A name to tell this connection apart, e.g. "corp bot". Defaults to the host.</p>
    ${fieldError('label', errors.label)}
  </div>
  <button type="submit" class="primary">Connect instance</button>
</form>`;
}

/** The guidance a security team expects next to the token form. */
export function tokenGuidance(): Html {
  return html`<aside class="guidance" aria-labelledby="guidance-title">
  <h3 id="guidance-title">Choosing a token</h3>
  <ul>
    <li><strong>Narrow scopes.</strong> <code>read_repository</code> + <code>write_repository</code> if the agent only clones and pushes (it can still open merge requests with push options). <code>api</code> + <code>read_user</code> only for a dedicated bot account.</li>
    <li><strong>An expiry date.</strong> A leaked token that expires stops working on its own; forgelink warns before it does.</li>
    <li><strong>A dedicated bot user with the Developer role</strong>, so everything the agent does is attributed to it and protected branches stay out of its reach.</li>
    <li><strong>Protect the default branch</strong>, so agent changes arrive as merge requests and go through review.</li>
  </ul>
</aside>`;
}
