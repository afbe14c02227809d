import { html } from 'hono/html';
import type { RunView } from '../../../runs/index.ts';
import { formatTime, plural } from '../format.ts';
import type { Html } from '../layout.ts';
import { quoteCommandLine } from '../command-line.ts';

export function runStatusBadge(status: RunView['status']): Html {
  return html`<span class="badge run-${status}">${status.replace('_', ' ')}</span>`;
}

export function outputsSummary(run: RunView): string {
  const { branches, mergeRequests, issues } = run.outputs;
  const parts = [
    branches.length > 0 ? plural(branches.length, 'branch', 'branches') : null,
    mergeRequests.length > 0 ? plural(mergeRequests.length, 'merge request') : null,
    issues.length > 0 ? plural(issues.length, 'issue') : null,
  ].filter((part) => part !== null);
  return parts.length === 0 ? '—' : parts.join(', ');
}

/**
 * Runs newest first, each linking to its page. The box scrolls sideways when the table is wider than the
 * screen; at phone width app.css stacks each row into a card, its cells named by `data-label`.
 */
export function runsTable(runs: RunView[], caption: string): Html {
  return html`<div class="table-scroll"><table class="runs">
  <caption class="visually-hidden">${caption}</caption>
  <thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Project</th><th scope="col">Command</th><th scope="col">Outputs</th><th scope="col">Created</th></tr></thead>
  <tbody>
    ${runs.map(
      (run) => html`<tr>
      <th scope="row"><a href="/runs/${run.id}">${run.id}</a></th>
      <td data-label="Status">${runStatusBadge(run.status)}</td>
      <td data-label="Project">${run.projectPath ?? run.project}</td>
      <td data-label="Command"><code class="truncate" title="${quoteCommandLine(run.command)}">${quoteCommandLine(run.command)}</code></td>
      <td data-label="Outputs">${outputsSummary(run)}</td>
      <td data-label="Created">${formatTime(run.createdAt)}</td>
    </tr>`,
    )}
  </tbody>
</table></div>`;
}
