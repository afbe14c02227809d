import type { Context } from 'hono';
import { revokePreviousRefreshToken, tokenExpired, tokenRevoked, type FakeOAuthToken } from './oauth/state.ts';
import { isExpired, type FakeState, type FakeToken, type FakeUser } from './state.ts';

/** A token GitLab has a record of: a personal access token or an OAuth access token. */
export type KnownToken = { type: 'personal'; record: FakeToken } | { type: 'oauth'; record: FakeOAuthToken };

/** What the request's credentials resolved to, before any scope check. */
export type Credential =
  | { kind: 'none' }
  | { kind: 'unknown' }
  | { kind: 'expired'; token: KnownToken }
  | { kind: 'revoked'; token: KnownToken }
  | { kind: 'ok'; token: KnownToken; user: FakeUser };

export type Authenticated = { token: KnownToken; user: FakeUser };

function bearer(request: Request): string | null {
  const authorization = request.headers.get('authorization');
  const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1] ?? null;
}

/**
 * Where GitLab looks for an OAuth access token: Doorkeeper's access_token_methods in
 * config/initializers/doorkeeper.rb, the `access_token` parameter, `Authorization: Bearer`, then the
 * `bearer_token` parameter. Never `PRIVATE-TOKEN`.
 */
export function extractOAuthToken(request: Request): string | null {
  const query = new URL(request.url).searchParams;
  return query.get('access_token') || bearer(request) || query.get('bearer_token') || null;
}

/**
 * GitLab looks for a personal access token in the `private_token` parameter, then the
 * `PRIVATE-TOKEN` header, then where OAuth tokens go (lib/gitlab/auth/auth_finders.rb,
 * extract_personal_access_token).
 */
export function extractToken(request: Request): string | null {
  const fromQuery = new URL(request.url).searchParams.get('private_token');
  if (fromQuery) return fromQuery;
  const fromHeader = request.headers.get('private-token');
  if (fromHeader) return fromHeader;
  return extractOAuthToken(request);
}

function personalCredential(state: FakeState, token: FakeToken): Credential {
  // AccessTokenValidationService#validate checks expiry before revocation.
  if (isExpired(state, token)) return { kind: 'expired', token: { type: 'personal', record: token } };
  if (token.revoked) return { kind: 'revoked', token: { type: 'personal', record: token } };
  const user = state.users.get(token.userId);
  if (!user || user.state !== 'active') return { kind: 'unknown' };
  return { kind: 'ok', token: { type: 'personal', record: token }, user };
}

function oauthCredential(state: FakeState, token: FakeOAuthToken): Credential {
  const nowMs = state.now().getTime();
  // find_oauth_access_token retires the pair this token was refreshed from before validating it.
  revokePreviousRefreshToken(state.oauth, token, nowMs);
  if (tokenExpired(token, nowMs)) return { kind: 'expired', token: { type: 'oauth', record: token } };
  if (tokenRevoked(token, nowMs)) return { kind: 'revoked', token: { type: 'oauth', record: token } };
  const user = state.users.get(token.userId);
  if (!user || user.state !== 'active') return { kind: 'unknown' };
  return { kind: 'ok', token: { type: 'oauth', record: token }, user };
}

/**
 * AuthFinders#access_token: an OAuth access token first; when the OAuth places hold none GitLab knows,
 * a personal access token from any of the places extractToken reads.
 */
export function resolveCredential(state: FakeState, request: Request): Credential {
  const oauthValue = extractOAuthToken(request);
  const oauthToken = oauthValue === null ? undefined : state.oauth.tokens.get(oauthValue);
  if (oauthToken) return oauthCredential(state, oauthToken);
  const value = extractToken(request);
  if (value === null) return { kind: 'none' };
  const token = state.tokens.get(value);
  return token ? personalCredential(state, token) : { kind: 'unknown' };
}

/** `401 {"message":"401 Unauthorized"}`: no token, or one GitLab has no record of (lib/api/helpers.rb, unauthorized!). */
export function unauthorized(c: Context): Response {
  return c.json({ message: '401 Unauthorized' }, 401);
}

/**
 * lib/api/api_guard.rb renders these through rack-oauth2's Bearer::Unauthorized, whose realm
 * defaults to "Protected by OAuth 2.0" because the error is raised inside the endpoint.
 */
function invalidToken(c: Context, description: string): Response {
  c.header(
    'WWW-Authenticate',
    `Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="${description}"`,
  );
  return c.json({ error: 'invalid_token', error_description: description }, 401);
}

export const EXPIRED_DESCRIPTION = 'Token is expired. You can either do re-authorization or token refresh.';
export const REVOKED_DESCRIPTION = 'Token was revoked. You have to re-authorize from the user.';
export const INSUFFICIENT_SCOPE_DESCRIPTION =
  'The request requires higher privileges than provided by the access token.';

/**
 * rack-oauth2's Bearer::Forbidden: no WWW-Authenticate header (GitLab marks that FIXME in
 * lib/api/api_guard.rb); `scope` lists the scopes the endpoint accepts, space separated.
 */
function insufficientScope(c: Context, accepted: readonly string[]): Response {
  return c.json(
    { error: 'insufficient_scope', error_description: INSUFFICIENT_SCOPE_DESCRIPTION, scope: accepted.join(' ') },
    403,
  );
}

/**
 * Authenticates the request and checks that the token carries one of `accepted` scopes
 * (an empty list accepts any scope, as `/personal_access_tokens/self` does).
 */
export function authenticate(
  c: Context,
  credential: Credential,
  accepted: readonly string[],
): Authenticated | Response {
  switch (credential.kind) {
    case 'none':
    case 'unknown':
      return unauthorized(c);
    case 'expired':
      return invalidToken(c, EXPIRED_DESCRIPTION);
    case 'revoked':
      return invalidToken(c, REVOKED_DESCRIPTION);
    case 'ok':
      if (accepted.length > 0 && !credential.token.record.scopes.some((s) => accepted.includes(s))) {
        return insufficientScope(c, accepted);
      }
      return { token: credential.token, user: credential.user };
  }
}

/**
 * Scopes GitLab accepts for reading: the endpoint's own first, then API::API's `api` and, for
 * GET/HEAD, `read_api` (scopes_registered_for_endpoint in lib/api/api_guard.rb).
 */
export function readScopes(...endpointScopes: string[]): string[] {
  return [...endpointScopes, 'api', 'read_api'];
}
