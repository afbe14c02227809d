import type { Clock, GitLabOAuthClient, GitLabOAuthClients, OutboundPolicy } from '../core/index.ts';
import type { HttpLogger } from './http.ts';
import { createGitLabOAuthClient, type OAuthApplication } from './oauth.ts';
import type { ResolveAll } from './outbound.ts';

/** Where GitLab sends the browser back to (docs/contract.md, "Web"); registered as the application's redirect URI. */
export function oauthRedirectUri(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/integrations/gitlab/callback`;
}

export type GitLabOAuthClientsOptions = {
  /** One per instance, base URLs normalised. */
  apps: readonly OAuthApplication[];
  publicUrl: string;
  scopes: readonly string[];
  policy: OutboundPolicy;
  clock: Clock;
  timeoutMs?: number;
  logger?: HttpLogger;
  resolveAll?: ResolveAll;
};

/** One OAuth client per configured instance, kept for the life of the process. */
export function createGitLabOAuthClients(options: GitLabOAuthClientsOptions): GitLabOAuthClients {
  const clients = new Map<string, GitLabOAuthClient>();
  for (const app of options.apps) {
    clients.set(
      app.baseUrl,
      createGitLabOAuthClient({
        app,
        redirectUri: oauthRedirectUri(options.publicUrl),
        scopes: options.scopes,
        policy: options.policy,
        clock: options.clock,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.resolveAll ? { resolveAll: options.resolveAll } : {}),
      }),
    );
  }
  return {
    instances: () => [...clients.keys()],
    forBaseUrl: (baseUrl) => clients.get(baseUrl) ?? null,
    async close() {
      await Promise.all([...clients.values()].map((client) => client.close()));
    },
  };
}
