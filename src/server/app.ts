import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import type { Logger } from 'pino';
import { InputError, NotFoundError, type AuditStore, type UserStore, type WorkerStore } from '../core/index.ts';
import type { ApiKeyService } from '../api-keys/index.ts';
import type { ConnectionEvents, ConnectionService } from '../connections/index.ts';
import type { DoctorService } from '../doctor/index.ts';
import type { RunService } from '../runs/index.ts';
import type { SecretService } from '../secrets/index.ts';
import type { RotationService } from '../tokens/index.ts';
import type { Clock, GitLabOAuthFlow, SessionStore } from '../core/index.ts';
import { requireApiKey, type AuthVariables } from './auth.ts';
import { opsRoutes, type OpsDeps } from './ops.ts';
import { toHttpError } from './errors.ts';
import { openApiDocument } from './openapi.ts';
import { requireJsonBodies } from './validate.ts';
import { auditRoutes } from './routes/audit.ts';
import { connectionRoutes } from './routes/connections.ts';
import { keyRoutes } from './routes/keys.ts';
import { rotationRoutes } from './routes/rotation.ts';
import { runRoutes } from './routes/runs.ts';
import { secretRoutes } from './routes/secrets.ts';
import { workerRoutes } from './routes/workers.ts';
import { CONTENT_SECURITY_POLICY, createAttemptLimiter, createWebRoutes, type AttemptLimiter, type SetupLinks } from './web/index.ts';

export type AppDeps = {
  users: UserStore;
  /** Authenticates API requests; `/keys` and the dashboard's API keys page manage them. */
  apiKeys: ApiKeyService;
  connections: ConnectionService;
  runs: RunService;
  /** Users' named secrets (`/secrets`, the dashboard's Secrets page). */
  secrets: SecretService;
  doctor?: DoctorService;
  /** Token rotation settings and rotating now (`PATCH /connections/:id`, `POST /connections/:id/rotate`). */
  rotation?: RotationService;
  /** Connections' status history (`GET /connections/:id/events`). */
  connectionEvents?: ConnectionEvents;
  audit?: AuditStore;
  /** The processes executing runs (`GET /workers`, `forgelink workers list`). */
  workers?: WorkerStore;
  logger: Logger;
  version: string;
  /** Dashboard sessions (the web pages); the API under /api/v1 uses Bearer API keys instead. */
  sessions: SessionStore;
  /** Connect Account; null or absent until the operator configures an OAuth application. */
  oauthFlow?: GitLabOAuthFlow | null;
  /** Where users reach forgelink (FORGELINK_PUBLIC_URL); https makes the cookies Secure. */
  publicUrl?: string;
  clock?: Clock;
  /** Sign-in failures allowed per user name and address; default 5 per 15 minutes. */
  signInLimiter?: AttemptLimiter;
  /** The first start's one-time setup link; `start()` in compose.ts issues and prints it. */
  setupLinks?: SetupLinks;
  /** `/readyz` and `/metrics` (ops.ts); without them only `/healthz` is served. */
  ops?: Pick<OpsDeps, 'readiness' | 'metrics' | 'metricsAccess'>;
};

const MAX_BODY_BYTES = 1024 * 1024;

/** The HTTP API and the web dashboard. Routes are testable in-process with `app.request()`. */
export function createApp(deps: AppDeps) {
  const { logger } = deps;
  const app = new Hono<{ Variables: AuthVariables }>();

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    // Path only: the query could carry a search term, never a secret, but keep logs lean.
    logger.info(
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) },
      'request',
    );
  });
  app.use(
    secureHeaders({
      contentSecurityPolicy: CONTENT_SECURITY_POLICY,
      xFrameOptions: 'DENY',
      // Not no-referrer: with it, browsers send `Origin: null` on same-origin form posts, which the CSRF check needs.
      referrerPolicy: 'same-origin',
      permissionsPolicy: { camera: [], microphone: [], geolocation: [], payment: [], usb: [] },
    }),
  );
  app.use(
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new InputError('body_too_large', `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
      },
    }),
  );

  if (deps.ops === undefined) app.get('/healthz', (c) => c.json({ ok: true, version: deps.version }));
  else app.route('/', opsRoutes({ ...deps.ops, version: deps.version, apiKeys: deps.apiKeys, logger }));

  const document = openApiDocument(deps.version);
  app.get('/api/v1/openapi.json', (c) => c.json(document));

  const api = new Hono<{ Variables: AuthVariables }>();
  api.use(requireApiKey(deps.apiKeys));
  api.use(requireJsonBodies());
  api.get('/me', (c) => c.json({ id: c.var.user.id, name: c.var.user.name, isAdmin: c.var.user.isAdmin, keyId: c.var.apiKeyId }));
  api.route('/connections', connectionRoutes(deps.connections, deps.doctor, deps.connectionEvents));
  api.route('/connections', rotationRoutes(deps.rotation, deps.connections));
  api.route('/runs', runRoutes(deps.runs));
  api.get('/agents', (c) => c.json({ agents: deps.runs.agents() }));
  api.route('/secrets', secretRoutes(deps.secrets));
  if (deps.audit !== undefined) api.route('/audit', auditRoutes(deps.audit));
  api.route('/keys', keyRoutes(deps.apiKeys));
  const workers = deps.workers;
  if (workers !== undefined) api.route('/workers', workerRoutes(workers));
  app.route('/api/v1', api);
  // Unknown API paths end here as JSON, before the dashboard's routes below see them.
  app.all('/api/*', (c) => {
    throw new NotFoundError('not_found', `No route for ${c.req.method} ${c.req.path}.`);
  });

  const web = createWebRoutes({
    users: deps.users,
    apiKeys: deps.apiKeys,
    sessions: deps.sessions,
    connections: deps.connections,
    runs: deps.runs,
    secrets: deps.secrets,
    oauthFlow: deps.oauthFlow ?? null,
    logger,
    clock: deps.clock ?? { now: () => new Date() },
    publicUrl: deps.publicUrl ?? 'http://127.0.0.1:8080',
    signInLimiter: deps.signInLimiter ?? createAttemptLimiter({ maxFailures: 5, windowMs: 15 * 60_000 }),
    ...(deps.doctor === undefined ? {} : { doctor: deps.doctor }),
    ...(deps.setupLinks === undefined ? {} : { setupLinks: deps.setupLinks }),
  });
  app.route('/', web.routes);

  app.notFound((c) => {
    if (!c.req.path.startsWith('/api/')) return c.html(web.notFoundPage(), 404);
    const { status, body } = toHttpError(new NotFoundError('not_found', `No route for ${c.req.method} ${c.req.path}.`));
    return c.json(body, status);
  });
  app.onError((error, c) => {
    if (!c.req.path.startsWith('/api/')) return web.errorResponse(c, error);
    const { status, body } = toHttpError(error);
    if (status >= 500) logger.error({ err: error, path: c.req.path }, 'request failed');
    else logger.info({ code: body.error.code, path: c.req.path }, 'request refused');
    return c.json(body, status);
  });
  return app;
}

export type App = ReturnType<typeof createApp>;
