export { createGitLabClient, gitlabClientFactory } from './client.ts';
export type { GitLabClientOptions, GitLabTransportSettings } from './client.ts';
export { answersLikeGitLab, createGitLabProbe } from './probe.ts';
export type { RawResponse } from './errors.ts';
export { GitLabHttp } from './http.ts';
export type { GitLabHttpOptions, HttpLogger, HttpMethod, Query } from './http.ts';
export type { ResolveAll } from './outbound.ts';
export { checkTls, resolveName, tcpConnect } from './diagnostics.ts';
export type { CertificateSummary, TlsReport } from './diagnostics.ts';
