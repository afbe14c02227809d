import type { Context, Hono } from 'hono';
import { extractOAuthToken } from '../auth.ts';
import type { AppEnv, Deps } from '../context.ts';
import { authenticateClient, clientCredentials } from '../oauth/clients.ts';
import { invalidTokenResponse, oauthErrorResponse, REVOKE_UNAUTHORIZED_DESCRIPTION } from '../oauth/errors.ts';
import { codeVerifierValid } from '../oauth/pkce.ts';
import { redirectUriAllowed } from '../oauth/redirect-uri.ts';
import { isKnownScope, parseScopes } from '../oauth/scopes.ts';
import {
  applicationById,
  expiresInSeconds,
  grantAccessible,
  issueToken,
  revokePreviousRefreshToken,
  revokeToken,
  tokenAccessible,
  tokenRevoked,
  type FakeOAuthApplication,
  type FakeOAuthToken,
} from '../oauth/state.ts';
import { readParams, stringParams } from '../params.ts';

type Params = Record<string, string | undefined>;

/** TokenResponse#body and #headers (Doorkeeper): never cached. */
function tokenResponse(c: Context, token: FakeOAuthToken, nowMs: number): Response {
  c.header('Cache-Control', 'no-store');
  c.header('Pragma', 'no-cache');
  return c.json({
    access_token: token.token,
    token_type: 'Bearer',
    expires_in: expiresInSeconds(token, nowMs),
    refresh_token: token.refreshToken,
    scope: token.scopes.join(' '),
    created_at: Math.floor(token.createdAtMs / 1000),
  });
}

/**
 * AuthorizationCodeRequest's validations in order: params (code_verifier when the code used PKCE,
 * redirect_uri), client, grant (known, this client's, unexpired, unused), redirect_uri (matches the
 * authorization request's), code_verifier. A used code is simply invalid: Doorkeeper does not revoke
 * the tokens it produced (GitLab leaves revoke_previous_authorization_code_token off).
 */
function exchangeCode(c: Context, deps: Deps, params: Params, client: FakeOAuthApplication | null): Response {
  const { oauth } = deps.state;
  const nowMs = deps.state.now().getTime();
  const grant = params.code ? oauth.grants.get(params.code) : undefined;
  if (grant?.codeChallenge && !params.code_verifier) return oauthErrorResponse(c, 'invalid_request');
  if (!params.redirect_uri) return oauthErrorResponse(c, 'invalid_request');
  if (!client) return oauthErrorResponse(c, 'invalid_client');
  if (!grant || grant.applicationId !== client.id || !grantAccessible(grant, nowMs)) return oauthErrorResponse(c, 'invalid_grant');
  if (!redirectUriAllowed(params.redirect_uri, [grant.redirectUri])) return oauthErrorResponse(c, 'invalid_grant');
  if (!codeVerifierValid(grant, params.code_verifier)) return oauthErrorResponse(c, 'invalid_grant');
  grant.revokedAtMs = nowMs;
  const token = issueToken(oauth, { application: client, userId: grant.userId, scopes: grant.scopes, grantType: 'authorization_code' }, nowMs);
  oauth.stats.codeExchanges += 1;
  return tokenResponse(c, token, nowMs);
}

/**
 * RefreshTokenRequest's validations in order: refresh_token present, known and unrevoked (an expired
 * access token does not matter), client (when credentials are sent they must authenticate), client match
 * (the token's application), scope (a subset of the old token's). The new pair replaces the old one:
 * see OAuthRefreshRevocation for when the old pair stops working.
 */
function refresh(c: Context, deps: Deps, params: Params, sentCredentials: boolean, client: FakeOAuthApplication | null): Response {
  const { oauth } = deps.state;
  const nowMs = deps.state.now().getTime();
  if (!params.refresh_token) return oauthErrorResponse(c, 'invalid_request');
  const old = oauth.refreshTokens.get(params.refresh_token);
  if (!old || tokenRevoked(old, nowMs)) return oauthErrorResponse(c, 'invalid_grant');
  if (sentCredentials && !client) return oauthErrorResponse(c, 'invalid_client');
  if (!client || client.id !== old.applicationId) return oauthErrorResponse(c, 'invalid_grant');
  let scopes = old.scopes;
  if (params.scope) {
    const requested = parseScopes(params.scope);
    if (requested.length === 0 || !requested.every((s) => isKnownScope(s) && old.scopes.includes(s))) {
      return oauthErrorResponse(c, 'invalid_scope');
    }
    scopes = [...new Set(requested)];
  }
  const immediately = oauth.settings.refreshRevocation === 'immediately';
  if (immediately) revokeToken(old, nowMs);
  const token = issueToken(
    oauth,
    { application: client, userId: old.userId, scopes, grantType: 'refresh_token', previousRefreshToken: immediately ? '' : old.refreshToken },
    nowMs,
  );
  oauth.stats.refreshes += 1;
  return tokenResponse(c, token, nowMs);
}

/** The OAuth endpoints Doorkeeper mounts under /oauth: token, revoke and token/info. */
export function registerOAuthTokenRoutes(root: Hono<AppEnv>, deps: Deps): void {
  /** doc/api/oauth2.md: form-encoded or JSON; the client authenticates with Basic or client_id/client_secret. */
  root.post('/oauth/token', async (c) => {
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;
    const params = stringParams(raw);
    const credentials = clientCredentials(c.req.header('authorization'), params);
    const client = authenticateClient(deps.state.oauth, credentials);
    switch (params.grant_type) {
      case undefined:
      case '':
        return oauthErrorResponse(c, 'invalid_request');
      case 'authorization_code':
        return exchangeCode(c, deps, params, client);
      case 'refresh_token':
        return refresh(c, deps, params, credentials !== null, client);
      default:
        return oauthErrorResponse(c, 'unsupported_grant_type');
    }
  });

  /**
   * Doorkeeper::TokensController#revoke (RFC 7009): 200 `{}` for unknown tokens too. A token of a
   * confidential application may only be revoked by that application; revoking the access or the
   * refresh token revokes the pair. GitLab skips Doorkeeper's client presence check while
   * ropc_without_client_credentials is on (its default).
   */
  root.post('/oauth/revoke', async (c) => {
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;
    const params = stringParams(raw);
    const { oauth } = deps.state;
    const value = params.token;
    const record = !value
      ? undefined
      : params.token_type_hint === 'refresh_token'
        ? oauth.refreshTokens.get(value)
        : (oauth.tokens.get(value) ?? oauth.refreshTokens.get(value));
    if (!record) return c.json({});
    const application = applicationById(oauth, record.applicationId);
    if (application?.confidential) {
      const client = authenticateClient(oauth, clientCredentials(c.req.header('authorization'), params));
      if (client?.id !== application.id) {
        return c.json({ error: 'unauthorized_client', error_description: REVOKE_UNAUTHORIZED_DESCRIPTION }, 403);
      }
    }
    const nowMs = deps.state.now().getTime();
    if (!tokenRevoked(record, nowMs)) {
      revokeToken(record, nowMs);
      oauth.stats.revocations += 1;
    }
    return c.json({});
  });

  /**
   * app/controllers/oauth/token_info_controller.rb: Doorkeeper's token JSON plus the deprecated `scopes`
   * and `expires_in_seconds` aliases; a missing, unknown, expired or revoked token gets
   * `Doorkeeper::OAuth::InvalidTokenResponse.new`, without a reason, so always "The access token is invalid".
   */
  root.get('/oauth/token/info', (c) => {
    const { oauth } = deps.state;
    const nowMs = deps.state.now().getTime();
    const value = extractOAuthToken(c.req.raw);
    const token = value === null ? undefined : oauth.tokens.get(value);
    if (token) revokePreviousRefreshToken(oauth, token, nowMs);
    if (!token || !tokenAccessible(token, nowMs)) return invalidTokenResponse(c);
    const expiresIn = expiresInSeconds(token, nowMs);
    return c.json({
      resource_owner_id: token.userId,
      scope: [...token.scopes],
      expires_in: expiresIn,
      application: { uid: applicationById(oauth, token.applicationId)?.clientId ?? null },
      created_at: Math.floor(token.createdAtMs / 1000),
      scopes: [...token.scopes],
      expires_in_seconds: expiresIn,
    });
  });
}
