export * from './errors.ts';
export * from './types.ts';
export type * from './ports.ts';
export * from './urls.ts';
export * from './addresses.ts';
export * from './capabilities.ts';
export * from './api-keys.ts';
export * from './runs.ts';
