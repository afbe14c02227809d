import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { ApiKeyService } from '../api-keys/index.ts';
import { NotAllowedError } from '../core/index.ts';
import { requireApiKey, type AuthVariables } from './auth.ts';
import { toHttpError } from './errors.ts';

/** One part `/readyz` checks: resolves when the part is reachable, rejects (or takes too long) when it is not. */
export type ReadinessCheck = { name: string; check(): Promise<void> };

/** Who may read `/metrics` (FORGELINK_METRICS_ACCESS): an administrator's API key, or anyone who reaches the listener. */
export type MetricsAccess = 'admin' | 'open';

export type OpsDeps = {
  version: string;
  /** Read on every request, so a part started later (the shared queue) can add its check. */
  readiness: () => readonly ReadinessCheck[];
  metrics: { readonly contentType: string; render(): Promise<string> };
  metricsAccess: MetricsAccess;
  apiKeys: ApiKeyService;
  logger: Logger;
  /** How long one readiness check may take before it counts as failed (default 2 s). */
  checkTimeoutMs?: number;
};

/**
 * `GET /healthz`, `GET /readyz` and `GET /metrics` (docs/contract.md, "Health and metrics"): the routes an operator's
 * load balancer, orchestrator and Prometheus use, the same on `forgelink serve` and on a runs-only worker. The first
 * two say only ok or which part failed, never why (the log says why), so they need no key.
 */
export function opsRoutes(deps: OpsDeps) {
  const app = new Hono<{ Variables: AuthVariables }>();
  const timeoutMs = deps.checkTimeoutMs ?? 2_000;

  app.get('/healthz', (c) => c.json({ ok: true, version: deps.version }));

  app.get('/readyz', async (c) => {
    const results = await Promise.all(
      deps.readiness().map(async ({ name, check }) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        });
        try {
          await Promise.race([check(), late]);
          return [name, 'ok'] as const;
        } catch (error) {
          deps.logger.warn({ check: name, err: error instanceof Error ? error.message : String(error) }, 'readiness check failed');
          return [name, 'failed'] as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const ok = results.every(([, state]) => state === 'ok');
    return c.json({ ok, checks: Object.fromEntries(results) }, ok ? 200 : 503);
  });

  if (deps.metricsAccess === 'admin') {
    app.use('/metrics', requireApiKey(deps.apiKeys), async (c, next) => {
      if (!c.var.user.isAdmin) {
        throw new NotAllowedError('admin_only', "Metrics are for administrators: use an administrator's API key, or set FORGELINK_METRICS_ACCESS=open on a listener only Prometheus reaches.");
      }
      await next();
    });
  }
  app.get('/metrics', async (c) => c.body(await deps.metrics.render(), 200, { 'content-type': deps.metrics.contentType, 'cache-control': 'no-store' }));
  app.onError((error, c) => {
    const { status, body } = toHttpError(error);
    if (status >= 500) deps.logger.error({ err: error, path: c.req.path }, 'request failed');
    return c.json(body, status);
  });
  return app;
}

/**
 * The HTTP server of a process that serves no API (`forgelink worker`): the three routes above and nothing else.
 */
export function createOpsApp(deps: OpsDeps) {
  const app = new Hono();
  app.route('/', opsRoutes(deps));
  app.notFound((c) => c.json({ error: { code: 'not_found', message: 'This process serves /healthz, /readyz and /metrics only.' } }, 404));
  return app;
}
