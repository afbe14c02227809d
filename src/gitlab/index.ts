export { createGitLabClient, gitlabClientFactory } from './client.ts';
export type { GitLabClientOptions, GitLabTransportSettings } from './client.ts';
export { createGitLabProbe } from './probe.ts';
export { GitLabHttp } from './http.ts';
export type { GitLabHttpOptions, HttpLogger, HttpMethod, Query } from './http.ts';
export type { ResolveAll } from './outbound.ts';
