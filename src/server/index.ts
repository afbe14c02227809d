export { createApp } from './app.ts';
export type { App, AppDeps } from './app.ts';
export { toHttpError } from './errors.ts';
export { createLogger } from './logger.ts';
