import { html } from 'hono/html';
import { hostOf, type ConnectionView } from '../../../core/index.ts';
import { DEFAULT_BASE_URL } from '../../../connections/index.ts';
import type { Auth } from '../context.ts';
import { notice, page, type AssetUrls, type Html, type NoticeKind } from '../layout.ts';
import { connectionCard } from './connection-card.ts';
import { selfHostedForm, tokenGuidance, type SelfHostedValues } from './self-hosted-form.ts';

export type IntegrationsView = {
  assets: AssetUrls;
  auth: Auth;
  now: Date;
  connections: ConnectionView[];
  /** Base URLs with an OAuth application; empty when none is configured. */
  oauthInstances: string[];
  form: SelfHostedValues;
  message: { kind: NoticeKind; text: string } | null;
};

function connectAccount(instances: string[]): Html {
  const missingGitLabCom = !instances.includes(DEFAULT_BASE_URL);
  return html`<section aria-labelledby="oauth-title" class="panel">
  <h2 id="oauth-title">Connect Account</h2>
  <p>Sign in at GitLab and approve forgelink; GitLab sends you back here and the connection appears below. No token to copy.</p>
  ${instances.length === 0
    ? ''
    : html`<ul class="oauth-instances">
    ${instances.map(
      (baseUrl) =>
        html`<li><a class="button primary" href="/integrations/gitlab/connect?baseUrl=${encodeURIComponent(baseUrl)}">Connect Account<span class="muted-on-primary"> · ${hostOf(baseUrl)}</span></a></li>`,
    )}
  </ul>`}
  ${missingGitLabCom
    ? html`<p class="notice notice-info">No OAuth application is configured for gitlab.com — ask the operator (<code>FORGELINK_GITLAB_OAUTH_APPS</code>).${instances.length === 0 ? ' Meanwhile, connect with a personal access token below (it works for gitlab.com too).' : ''}</p>`
    : ''}
</section>`;
}

/** Integrations → GitLab: every connection, Connect Account per OAuth instance, the self-hosted form, guidance. */
export function integrationsPage(view: IntegrationsView): Html {
  const { connections, auth, now } = view;
  return page(
    { title: 'Integrations → GitLab', auth, assets: view.assets, section: 'integrations' },
    html`<h1>Integrations → GitLab</h1>
${view.message === null ? '' : notice(view.message.kind, view.message.text)}
<section aria-labelledby="connections-title">
  <h2 id="connections-title">Connections <span class="count">${connections.length}</span></h2>
  ${connections.length === 0
    ? html`<p class="empty">No GitLab account connected yet. Use Connect Account, or a token for a self-hosted instance.</p>`
    : html`<div class="connections">${connections.map((connection) => connectionCard(connection, auth, now, connections))}</div>`}
</section>
<div class="columns">
  ${connectAccount(view.oauthInstances)}
  <section aria-labelledby="self-hosted-title" class="panel">
    <h2 id="self-hosted-title">Self-hosted instance</h2>
    <p>Or any instance, gitlab.com included, with a personal access token.</p>
    ${selfHostedForm(view.form, auth)}
    ${tokenGuidance()}
  </section>
</div>`,
  );
}
