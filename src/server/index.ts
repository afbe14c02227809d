export { createApp } from './app.ts';
export type { App, AppDeps } from './app.ts';
export { toHttpError } from './errors.ts';
export { createLogger, prettyLogStream, type LogFormat } from './logger.ts';
export { createSetupLinks, hashPassword, passwordProblem, SETUP_LINK_LIFETIME_MS, type SetupLinks } from './web/index.ts';
export { createOpsApp, opsRoutes, type MetricsAccess, type OpsDeps, type ReadinessCheck } from './ops.ts';
export { createWorkerApp, type WorkerApp } from './worker-app.ts';
