import { html } from 'hono/html';
import { expiryCountdown, sameAccountConnections, type Capabilities, type ConnectionView } from '../../../core/index.ts';
import type { Auth } from '../context.ts';
import { expiryText, formatTime } from '../format.ts';
import { csrfField, type Html } from '../layout.ts';

const CAPABILITY_LABELS: Record<keyof Capabilities, string> = {
  clone: 'clone',
  push: 'push branches',
  mergeRequestsViaApi: 'open merge requests through the API',
  mergeRequestsViaPushOptions: 'open merge requests with push options',
  issues: 'file issues',
  readUser: 'read its own account',
};

export function kindText(kind: ConnectionView['kind']): string {
  return kind === 'oauth' ? 'OAuth' : 'Access token';
}

export function accountText(connection: ConnectionView): string {
  return connection.account === null ? 'unknown' : `@${connection.account.username} (${connection.account.name})`;
}

function capabilities(caps: Capabilities): Html {
  const keys = Object.keys(CAPABILITY_LABELS) as (keyof Capabilities)[];
  return html`<ul class="capabilities">
    ${keys.map(
      (key) =>
        html`<li class="${caps[key] ? 'can' : 'cannot'}"><span class="visually-hidden">${caps[key] ? 'Can' : 'Cannot'}: </span><span aria-hidden="true">${caps[key] ? '✓' : '✗'}</span> ${CAPABILITY_LABELS[key]}</li>`,
    )}
  </ul>`;
}

/**
 * One connection with everything a security reviewer asks about, and its Check now / Disconnect actions.
 * `all` is every connection of the user: other connections of the same account are named as a warning.
 */
export function connectionCard(connection: ConnectionView, auth: Auth, now: Date, all: readonly ConnectionView[]): Html {
  const id = connection.id;
  const duplicates = sameAccountConnections(connection, all);
  // The base URL already names the host (and any subpath): shown once, then what is known of the instance.
  const instance = [connection.instanceVersion === null ? null : `GitLab ${connection.instanceVersion}`, connection.hasCustomCa ? 'private CA' : null]
    .filter((part) => part !== null)
    .join(' · ');
  const expiry =
    connection.expiresAt === null && connection.kind === 'oauth' ? 'no fixed date (renewed through OAuth)' : expiryText(connection.expiresAt, now);
  // The countdown also sits beside the status while the token is about to expire, where it cannot be missed.
  const countdown =
    connection.expiresAt !== null && connection.warnings.some((warning) => warning.code === 'expires_soon')
      ? expiryCountdown(connection.expiresAt, now)
      : null;
  return html`<article class="connection" id="${id}" aria-labelledby="${id}-title">
  <header class="connection-head">
    <h3 id="${id}-title">${connection.label}</h3>
    <span class="badge status-${connection.status}">${connection.status}</span>
    ${countdown === null ? '' : html`<span class="badge expiring" title="Expires on ${connection.expiresAt}">${countdown}</span>`}
  </header>
  ${connection.status !== 'active' && connection.statusReason !== null ? html`<p class="status-reason">${connection.statusReason}</p>` : ''}
  <dl class="facts">
    <div><dt>ID</dt><dd><code class="connection-id" title="The connection's id, as forgelink CLI commands take it">${id}</code></dd></div>
    <div><dt>Host</dt><dd>${connection.baseUrl}${instance === '' ? '' : html` <span class="muted">· ${instance}</span>`}</dd></div>
    <div><dt>Account</dt><dd>${accountText(connection)}</dd></div>
    <div><dt>Kind</dt><dd>${kindText(connection.kind)}</dd></div>
    <div><dt>Scopes</dt><dd>${connection.scopes.length === 0 ? 'none' : connection.scopes.map((scope) => html`<code>${scope}</code> `)}</dd></div>
    <div><dt>Expires</dt><dd>${expiry}</dd></div>
    <div><dt>Checked</dt><dd>${formatTime(connection.checkedAt)}</dd></div>
  </dl>
  <h4>What an agent can do with it</h4>
  ${capabilities(connection.capabilities)}
  ${connection.warnings.length === 0 && duplicates.length === 0
    ? ''
    : html`<h4>Warnings</h4>
  <ul class="warnings">
    ${connection.warnings.map((warning) => html`<li><strong>${warning.code}</strong>: ${warning.message}</li>`)}
    ${duplicates.map(
      (other) =>
        html`<li><strong>duplicate</strong>: ${accountText(connection)} on ${connection.baseUrl} is also connected as <a href="#${other.id}"><code>${other.id}</code></a> (${other.label}); disconnect the one you no longer use.</li>`,
    )}
  </ul>`}
  <div class="actions">
    <form method="post" action="/integrations/gitlab/connections/${id}/check">
      ${csrfField(auth)}
      <button type="submit">Check now</button>
    </form>
    <form method="post" action="/integrations/gitlab/connections/${id}/doctor">
      ${csrfField(auth)}
      <button type="submit" title="Diagnose DNS, TLS, subpath, token, proxy, clone URL and clock step by step">Doctor</button>
    </form>
    <details class="confirm">
      <summary>Disconnect…</summary>
      <div class="confirm-body">
        <p>Disconnect <strong>${connection.label}</strong>? forgelink deletes its stored token${connection.kind === 'oauth' ? ' and revokes it at GitLab' : ''}; runs can no longer use it.${connection.kind === 'pat' ? ' The token itself stays valid at GitLab until you revoke it there.' : ''}</p>
        <form method="post" action="/integrations/gitlab/connections/${id}/disconnect">
          ${csrfField(auth)}
          <button type="submit" class="danger">Yes, disconnect ${connection.label}</button>
        </form>
      </div>
    </details>
  </div>
</article>`;
}
