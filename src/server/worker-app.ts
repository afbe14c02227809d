import { Hono } from 'hono';
import { opsRoutes, type OpsDeps } from './ops.ts';

/**
 * What `forgelink worker` serves on FORGELINK_LISTEN: no API, no dashboard, only whether the process is alive
 * (`/healthz`, which also names the worker), whether it can work (`/readyz`) and its figures (`/metrics`).
 */
export function createWorkerApp(deps: { version: string; worker: string; ops: Omit<OpsDeps, 'version'> }) {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true, version: deps.version, role: 'worker', worker: deps.worker }));
  app.route('/', opsRoutes({ ...deps.ops, version: deps.version }));
  app.notFound((c) => c.json({ error: { code: 'not_found', message: 'A worker serves /healthz, /readyz and /metrics only; the API is on `forgelink serve`.' } }, 404));
  return app;
}

export type WorkerApp = ReturnType<typeof createWorkerApp>;
