export { createApp } from './app.ts';
export type { App, AppDeps } from './app.ts';
export { toHttpError } from './errors.ts';
export { createLogger } from './logger.ts';
export { hashPassword, passwordProblem } from './web/index.ts';
