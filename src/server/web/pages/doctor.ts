import { html } from 'hono/html';
import type { DoctorReport } from '../../../doctor/index.ts';
import type { Auth } from '../context.ts';
import { page, type AssetUrls, type Html } from '../layout.ts';

const LABELS = { pass: 'ok', warn: 'warning', fail: 'failed', skip: 'skipped' } as const;

/** The doctor's report for one connection: each step with what passed, warned or failed, and what to do. */
export function doctorPage(view: { assets: AssetUrls; auth: Auth; label: string; report: DoctorReport }): Html {
  const { report } = view;
  return page(
    { title: `Doctor: ${view.label}`, auth: view.auth, assets: view.assets },
    html`<p class="breadcrumb"><a href="/integrations/gitlab#${report.connectionId}">Integrations → GitLab</a> /</p>
<h1>Doctor: ${view.label}</h1>
<p class="lead">${report.baseUrl} — ${report.ok ? 'no problem found.' : 'problems found: the first failed step says what to do.'}</p>
<div class="table-scroll"><table class="doctor">
  <thead><tr><th scope="col">Step</th><th scope="col">Result</th><th scope="col">What forgelink found</th></tr></thead>
  <tbody>
    ${report.steps.map(
      (step) => html`<tr class="doctor-${step.status}" data-step="${step.id}">
      <th scope="row">${step.title}</th>
      <td><span class="badge badge-${step.status}">${LABELS[step.status]}</span></td>
      <td>${step.message}</td>
    </tr>`,
    )}
  </tbody>
</table></div>
<p class="muted">Checked ${report.checkedAt}. The same report: <code>forgelink connections doctor ${report.connectionId}</code> (add <code>--json</code> for scripts).</p>`,
  );
}
