import { Hono } from 'hono';
import { authOf } from '../auth-guard.ts';
import type { WebDeps, WebEnv } from '../context.ts';
import type { AssetUrls } from '../layout.ts';
import { dashboardPage } from '../pages/dashboard.ts';

const RECENT_RUNS = 20;

export function dashboardRoutes(deps: WebDeps, assets: AssetUrls) {
  return new Hono<WebEnv>().get('/', async (c) => {
    const auth = authOf(c);
    const [connections, recentRuns] = await Promise.all([deps.connections.list(auth.user.id), deps.runs.list(auth.user.id, RECENT_RUNS)]);
    return c.html(dashboardPage({ assets, auth, connections, recentRuns }));
  });
}
