import { html } from 'hono/html';
import { refusalReason, TERMINAL_STATUSES, type ConnectionView, type RunLogEntry } from '../../../core/index.ts';
import type { RunView } from '../../../runs/index.ts';
import { quoteCommandLine } from '../command-line.ts';
import type { Auth } from '../context.ts';
import { durationText, formatTime, safeHref } from '../format.ts';
import { csrfField, notice, page, type AssetUrls, type Html, type NoticeKind } from '../layout.ts';
import { runStatusBadge } from './run-parts.ts';

export type RunPageView = {
  assets: AssetUrls;
  auth: Auth;
  run: RunView;
  /** Null when the connection was disconnected since. */
  connection: ConnectionView | null;
  log: RunLogEntry[];
  message: { kind: NoticeKind; text: string } | null;
};

function link(url: string | null, text: string | Html): Html | string {
  const href = safeHref(url);
  return href === null ? text : html`<a href="${href}" rel="noopener noreferrer">${text}</a>`;
}

function outputs(run: RunView): Html {
  const { branches, mergeRequests, issues } = run.outputs;
  const finished = TERMINAL_STATUSES.includes(run.status);
  const none = finished ? 'None.' : 'None yet.';
  return html`<section aria-labelledby="outputs-title" class="panel outputs">
  <h2 id="outputs-title">Outputs</h2>
  <h3>Merge requests</h3>
  ${mergeRequests.length === 0
    ? html`<p class="empty">${none}</p>`
    : html`<ul>${mergeRequests.map(
        (mr) =>
          html`<li>${link(mr.webUrl, html`!${mr.iid} ${mr.title ?? mr.sourceBranch}`)} <span class="muted">${mr.sourceBranch} → ${mr.targetBranch ?? 'default branch'} · found ${mr.detectedBy === 'api' ? 'through the API' : 'in the push reply'}</span></li>`,
      )}</ul>`}
  <h3>Branches</h3>
  ${branches.length === 0
    ? html`<p class="empty">${none}</p>`
    : html`<ul>${branches.map(
        (branch) => html`<li>${link(branch.webUrl, branch.name)} <span class="muted">${branch.created ? 'new' : 'updated'} · <code>${branch.sha.slice(0, 12)}</code></span></li>`,
      )}</ul>`}
  <h3>Issues</h3>
  ${issues.length === 0
    ? html`<p class="empty">${none}</p>`
    : html`<ul>${issues.map((issue) => html`<li>${link(issue.webUrl, html`#${issue.iid} ${issue.title}`)}</li>`)}</ul>`}
</section>`;
}

/** What the credential broker refused on this run (docs/security.md, "Run policy"), or how the run held its credentials. */
function policySection(run: RunPageView['run']): Html {
  const refused = run.policy.refused;
  const mode =
    run.credentials === 'brokered'
      ? 'Credentials brokered: the sandbox held surrogates; the run\'s proxy put in the real ones and applied the run policy.'
      : 'Credentials direct: the sandbox held the real token, and no run policy applied.';
  const options = run.credentials === 'brokered' ? (run.policy.options ?? null) : null;
  const state = (on: boolean) => (on ? html`<strong>allowed</strong>` : 'refused');
  return html`<section aria-labelledby="policy-title" class="panel">
  <h2 id="policy-title">Policy</h2>
  <p class="muted">${mode}</p>
  ${options === null
    ? ''
    : html`<p>Fixed when the run started: pushing tags ${state(options.allowTags)}, merging merge requests ${state(options.allowMerge)}, reading other projects ${state(options.readOtherProjects)}.</p>`}
  ${refused.length === 0
    ? html`<p class="empty">${run.credentials === 'brokered' ? 'Nothing was refused.' : ''}</p>`
    : html`<ul>${refused.map(
        (refusal) => html`<li><strong>${refusal.rule}</strong> <code>${refusal.method} ${refusal.target}</code> <span class="muted">${formatTime(refusal.at)}</span><br>${refusalReason(refusal)}</li>`,
      )}</ul>`}
</section>`;
}

/** One run: status, outputs as GitLab links, the log (live through app.js while it runs), Cancel. */
export function runPage(view: RunPageView): Html {
  const { run, auth, connection } = view;
  const finished = TERMINAL_STATUSES.includes(run.status);
  const lastSeq = view.log.at(-1)?.seq ?? 0;
  const egress = run.egress;
  const took = durationText(run.startedAt, run.finishedAt);
  return page(
    { title: `Run ${run.id}`, auth, assets: view.assets, section: 'runs' },
    html`<p class="breadcrumb"><a href="/runs">Runs</a> /</p>
<h1>Run <code>${run.id}</code> ${runStatusBadge(run.status)}</h1>
${view.message === null ? '' : notice(view.message.kind, view.message.text)}
${run.error === null
  ? ''
  : run.status === 'canceled'
    ? notice('info', run.error.message)
    : notice('error', html`<strong>${run.error.code}</strong>: ${run.error.message}`)}
${run.warnings.map((warning) => notice('info', html`<strong>${warning.code}</strong>: ${warning.message}`))}
<div class="columns">
  <section aria-labelledby="details-title" class="panel">
    <h2 id="details-title">Details</h2>
    <dl class="facts">
      <div><dt>Project</dt><dd>${link(run.projectWebUrl, run.projectPath ?? run.project)}</dd></div>
      <div><dt>Connection</dt><dd>${connection === null ? html`<span class="muted">${run.connectionId} (disconnected)</span>` : html`<a href="/integrations/gitlab#${connection.id}">${connection.label}</a> <span class="muted">${connection.host}</span>`}</dd></div>
      <div><dt>Branch</dt><dd>${run.baseBranch ?? run.branch ?? html`<span class="muted">the default branch</span>`}</dd></div>
      <div><dt>Command</dt><dd><code>${quoteCommandLine(run.command)}</code></dd></div>
      <div><dt>Created</dt><dd>${formatTime(run.createdAt)}</dd></div>
      <div><dt>Started</dt><dd>${formatTime(run.startedAt)}</dd></div>
      <div><dt>Finished</dt><dd>${formatTime(run.finishedAt)}${took === null ? '' : html` <span class="muted">(took ${took})</span>`}</dd></div>
      <div><dt>Exit code</dt><dd>${run.exitCode === null ? '—' : String(run.exitCode)}</dd></div>
      <div><dt>Network</dt><dd>${finished
        ? html`${egress.allowed.length === 0 ? 'no host reached' : `reached ${egress.allowed.join(', ')}`}${egress.refused.length === 0 ? '' : html`; <strong>refused ${egress.refused.join(', ')}</strong>`}`
        : html`<span class="muted">recorded when the run ends</span>`}</dd></div>
    </dl>
    ${finished
      ? ''
      : html`<form method="post" action="/runs/${run.id}/cancel">
      ${csrfField(auth)}
      <button type="submit" class="danger">Cancel run</button>
    </form>`}
  </section>
  ${outputs(run)}
</div>
${policySection(run)}
<section aria-labelledby="log-title">
  <h2 id="log-title">Log</h2>
  <p class="muted" id="log-status" aria-live="polite">${finished ? `The run ${run.status === 'canceled' ? 'was canceled' : run.status.replace('_', ' ')}.` : html`The run is ${run.status}. <a href="/runs/${run.id}">Reload</a> to see more${' '}(live when JavaScript is on).`}</p>
  <pre id="log" class="log" tabindex="0" aria-labelledby="log-title"${finished ? '' : html` data-live-log="/runs/${run.id}/log" data-after="${lastSeq}"`}>${view.log.map((entry) => (entry.stream === 'system' ? html`<span class="log-system">${entry.text}</span>` : entry.text))}</pre>
</section>`,
  );
}
