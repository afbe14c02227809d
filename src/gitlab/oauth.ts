import * as oauth from 'oauth4webapi';
import { fetch as undiciFetch } from 'undici';
import {
  UpstreamError,
  type Clock,
  type GitLabOAuthClient,
  type OAuthTokenSet,
  type OutboundPolicy,
} from '../core/index.ts';
import { describeUrl, networkFailure, safeCause } from './errors.ts';
import { GitLabHttp, type HttpLogger } from './http.ts';
import { createOutboundAgent, type ResolveAll } from './outbound.ts';
import { OAuthTokenInfo } from './schema.ts';

/** The OAuth application the operator registered on one GitLab instance. */
export type OAuthApplication = {
  /** Normalised base URL (core `normaliseBaseUrl`), subpath included. */
  baseUrl: string;
  clientId: string;
  /** Null for a non-confidential application (PKCE only). */
  clientSecret: string | null;
  /** PEM bundle of the instance's private CA, if any. */
  caPem: string | null;
};

export type GitLabOAuthClientOptions = {
  app: OAuthApplication;
  /** `<public url>/integrations/gitlab/callback`, sent byte for byte in the authorize, token and refresh requests. */
  redirectUri: string;
  scopes: readonly string[];
  policy: OutboundPolicy;
  clock: Clock;
  /** Per request; default 15 s. */
  timeoutMs?: number;
  logger?: HttpLogger;
  resolveAll?: ResolveAll;
};

/** An OAuth client for one instance on oauth4webapi, sending every request through the outbound policy and the instance's CA. */
export function createGitLabOAuthClient(options: GitLabOAuthClientOptions): GitLabOAuthClient {
  const { app, redirectUri, clock } = options;
  const baseUrl = app.baseUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 15_000;
  const agent = createOutboundAgent({
    policy: options.policy,
    caPem: app.caPem,
    connectTimeoutMs: timeoutMs,
    ...(options.resolveAll ? { resolveAll: options.resolveAll } : {}),
  });
  // GitLab publishes no RFC 8414 metadata we could rely on for self-managed instances under a subpath, and its
  // endpoints are fixed (GitLab docs: api/oauth2.md), so the metadata is written here rather than discovered.
  const server: oauth.AuthorizationServer = {
    issuer: baseUrl,
    authorization_endpoint: `${baseUrl}/oauth/authorize`,
    token_endpoint: `${baseUrl}/oauth/token`,
    revocation_endpoint: `${baseUrl}/oauth/revoke`,
  };
  const client: oauth.Client = { client_id: app.clientId };
  // Confidential applications authenticate with the secret in the body, as GitLab's docs show; public ones
  // send only client_id and rely on PKCE.
  const clientAuth = app.clientSecret === null ? oauth.None() : oauth.ClientSecretPost(app.clientSecret);

  const requestOptions = {
    signal: () => AbortSignal.timeout(timeoutMs),
    // Plain http only reaches here for loopback or an operator's FORGELINK_ALLOW_HTTP (normaliseBaseUrl).
    [oauth.allowInsecureRequests]: baseUrl.startsWith('http:'),
    async [oauth.customFetch](url: string, init: oauth.CustomFetchOptions<'POST' | 'GET', URLSearchParams | undefined>) {
      try {
        const response = await undiciFetch(url, { ...init, dispatcher: agent });
        options.logger?.debug({ method: init.method, url: describeUrl(url), status: response.status }, 'gitlab oauth request');
        // undici's Response is the class Node's fetch uses; oauth4webapi checks it by its tag.
        return response as unknown as Response;
      } catch (error) {
        const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
        throw networkFailure(error, url, [], timedOut ? timeoutMs : null).error;
      }
    },
  };

  function tokenSet(response: oauth.TokenEndpointResponse): OAuthTokenSet {
    const expiresIn = response.expires_in;
    return {
      accessToken: response.access_token,
      refreshToken: response.refresh_token ?? null,
      expiresAt: expiresIn === undefined ? null : new Date(clock.now().getTime() + expiresIn * 1000).toISOString(),
      scopes: typeof response.scope === 'string' ? response.scope.split(/\s+/).filter(Boolean) : null,
    };
  }

  return {
    baseUrl,
    caPem: app.caPem,

    authorizeUrl({ state, codeChallenge }) {
      const url = new URL(server.authorization_endpoint as string);
      url.searchParams.set('client_id', app.clientId);
      url.searchParams.set('redirect_uri', redirectUri);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('state', state);
      url.searchParams.set('scope', options.scopes.join(' '));
      url.searchParams.set('code_challenge', codeChallenge);
      url.searchParams.set('code_challenge_method', 'S256');
      return url.href;
    },

    validateCallback(query, expectedState) {
      try {
        return { ok: true, parameters: oauth.validateAuthResponse(server, client, query, expectedState) };
      } catch (error) {
        if (error instanceof oauth.AuthorizationResponseError) {
          return { ok: false, error: error.error, description: error.error_description ?? null };
        }
        return { ok: false, error: 'invalid_request', description: error instanceof Error ? error.message : null };
      }
    },

    async exchangeCode(parameters, codeVerifier) {
      try {
        const response = await oauth.authorizationCodeGrantRequest(
          server,
          client,
          clientAuth,
          parameters,
          redirectUri,
          codeVerifier,
          requestOptions,
        );
        return tokenSet(await oauth.processAuthorizationCodeResponse(server, client, response));
      } catch (error) {
        throw tokenEndpointError(error, 'exchange', baseUrl);
      }
    },

    async refresh(refreshToken) {
      try {
        // GitLab's docs send the same redirect_uri with a refresh (api/oauth2.md); Doorkeeper ignores it otherwise.
        const response = await oauth.refreshTokenGrantRequest(server, client, clientAuth, refreshToken, {
          ...requestOptions,
          additionalParameters: { redirect_uri: redirectUri },
        });
        return tokenSet(await oauth.processRefreshTokenResponse(server, client, response));
      } catch (error) {
        throw tokenEndpointError(error, 'refresh', baseUrl, [refreshToken]);
      }
    },

    async revoke(token, hint) {
      try {
        const response = await oauth.revocationRequest(server, client, clientAuth, token, {
          ...requestOptions,
          additionalParameters: { token_type_hint: hint },
        });
        await oauth.processRevocationResponse(response);
      } catch (error) {
        throw tokenEndpointError(error, 'revoke', baseUrl, [token]);
      }
    },

    async tokenInfo(accessToken) {
      const http = GitLabHttp.create({
        baseUrl,
        token: accessToken,
        tokenKind: 'oauth',
        caPem: app.caPem,
        policy: options.policy,
        timeoutMs,
        clock,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.resolveAll ? { resolveAll: options.resolveAll } : {}),
      });
      try {
        const info = http.parse(await http.send('GET', `${baseUrl}/oauth/token/info`), OAuthTokenInfo);
        return {
          resourceOwnerId: info.resource_owner_id,
          scopes: info.scope ?? info.scopes ?? [],
          expiresInSeconds: info.expires_in ?? null,
        };
      } finally {
        await http.close();
      }
    },

    close: () => agent.close(),
  };
}

/**
 * Maps what oauth4webapi threw for a token or revocation endpoint call. Error codes are RFC 6749 §5.2's;
 * GitLab (Doorkeeper) answers a refresh token that was used, revoked or belongs to another client with
 * `invalid_grant`, which only a new authorization by the user cures.
 */
function tokenEndpointError(
  error: unknown,
  action: 'exchange' | 'refresh' | 'revoke',
  baseUrl: string,
  secrets: readonly string[] = [],
): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const cause = safeCause(error, secrets);
  const host = new URL(baseUrl).host;
  const doing = { exchange: 'exchanging the authorization code', refresh: 'renewing the access token', revoke: 'revoking the token' }[action];
  if (error instanceof oauth.ResponseBodyError || error instanceof oauth.WWWAuthenticateChallengeError) {
    const code =
      error instanceof oauth.ResponseBodyError
        ? error.error
        : (error.cause.find((challenge) => challenge.parameters.error)?.parameters.error ?? 'invalid_client');
    const status = error.status;
    if (code === 'invalid_grant' && action === 'refresh') {
      return new UpstreamError(
        'token_revoked',
        `GitLab at ${host} no longer accepts this connection's authorization (invalid_grant): it was revoked, or renewed elsewhere. Reconnect the account to authorize forgelink again.`,
        { status, cause },
      );
    }
    if (code === 'invalid_client' || code === 'unauthorized_client') {
      return new UpstreamError(
        'forbidden',
        `GitLab at ${host} refused forgelink's OAuth application (${code}) while ${doing}. The operator should check the client id and secret in FORGELINK_GITLAB_OAUTH_APPS.`,
        { status, cause },
      );
    }
    return new UpstreamError('bad_response', `GitLab at ${host} refused ${doing} (${code}).`, { status, cause });
  }
  if (error instanceof oauth.OperationProcessingError) {
    const response = (error as { cause?: unknown }).cause;
    const status = response instanceof Response || (typeof response === 'object' && response !== null && 'status' in response)
      ? Number((response as { status: unknown }).status)
      : undefined;
    if (status !== undefined && status >= 500) {
      return new UpstreamError('server_error', `GitLab at ${host} answered ${status} while ${doing}; try again later.`, { status, cause });
    }
    return new UpstreamError(
      'bad_response',
      `GitLab at ${host} gave an answer forgelink could not use while ${doing}${status === undefined ? '' : ` (${status})`}.`,
      { ...(status === undefined ? {} : { status }), cause },
    );
  }
  return new UpstreamError('bad_response', `Failed while ${doing} with GitLab at ${host}.`, { cause });
}
