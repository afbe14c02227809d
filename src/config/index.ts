export { readConfig, readClientConfig, readListen, ConfigError } from './config.ts';
export type { Config, ClientConfig, GitLabOAuthApp } from './config.ts';
