export { readConfig, readListen, ConfigError } from './config.ts';
export type { Config, GitLabOAuthApp } from './config.ts';
export type { OperatorPolicy } from './policy.ts';
