import { Hono } from 'hono';

/**
 * What `forgelink worker` serves on FORGELINK_LISTEN: no API, no dashboard, only whether the process is alive
 * (`/healthz`). Readiness and metrics are added to this app where the service's health checks live.
 */
export function createWorkerApp(deps: { version: string; worker: string }) {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true, version: deps.version, role: 'worker', worker: deps.worker }));
  app.notFound((c) => c.json({ error: { code: 'not_found', message: 'A worker serves /healthz only; the API is on `forgelink serve`.' } }, 404));
  return app;
}

export type WorkerApp = ReturnType<typeof createWorkerApp>;
