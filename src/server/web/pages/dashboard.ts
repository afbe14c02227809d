import { html } from 'hono/html';
import { TERMINAL_STATUSES, type ConnectionView } from '../../../core/index.ts';
import type { RunView } from '../../../runs/index.ts';
import type { Auth } from '../context.ts';
import { plural } from '../format.ts';
import { page, type AssetUrls, type Html } from '../layout.ts';
import { runsTable } from './run-parts.ts';

export type DashboardView = { assets: AssetUrls; auth: Auth; connections: ConnectionView[]; recentRuns: RunView[] };

/** The overview: how many connections and in what state, and the latest runs. */
export function dashboardPage(view: DashboardView): Html {
  const { connections, recentRuns } = view;
  const inactive = connections.filter((connection) => connection.status !== 'active').length;
  const warned = connections.filter((connection) => connection.warnings.length > 0).length;
  return page(
    { title: 'Dashboard', auth: view.auth, assets: view.assets, section: 'dashboard' },
    html`<h1>Dashboard</h1>
<div class="tiles">
  <section class="panel tile" aria-labelledby="tile-connections">
    <h2 id="tile-connections">GitLab connections</h2>
    <p class="big">${connections.length}</p>
    <p>${connections.length === 0
      ? 'None yet.'
      : [inactive === 0 ? 'all active' : `${inactive} not active`, warned === 0 ? 'no warnings' : `${plural(warned, 'connection')} with warnings`].join(' · ')}</p>
    <p><a class="button" href="/integrations/gitlab">${connections.length === 0 ? 'Connect GitLab' : 'Manage connections'}</a></p>
  </section>
  <section class="panel tile" aria-labelledby="tile-runs">
    <h2 id="tile-runs">Runs</h2>
    <p class="big">${recentRuns.filter((run) => !TERMINAL_STATUSES.includes(run.status)).length}</p>
    <p>in progress</p>
    <p><a class="button" href="/runs">Start a run</a></p>
  </section>
</div>
<section aria-labelledby="recent-title">
  <h2 id="recent-title">Recent runs</h2>
  ${recentRuns.length === 0 ? html`<p class="empty">No runs yet.</p>` : runsTable(recentRuns.slice(0, 5), 'Recent runs, newest first')}
  ${recentRuns.length > 5 ? html`<p><a href="/runs">All runs</a></p>` : ''}
</section>`,
  );
}
