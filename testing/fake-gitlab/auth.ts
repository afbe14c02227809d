import type { Context } from 'hono';
import { isExpired, type FakeState, type FakeToken, type FakeUser } from './state.ts';

/** What the request's credentials resolved to, before any scope check. */
export type Credential =
  | { kind: 'none' }
  | { kind: 'unknown' }
  | { kind: 'expired'; token: FakeToken }
  | { kind: 'revoked'; token: FakeToken }
  | { kind: 'ok'; token: FakeToken; user: FakeUser };

export type Authenticated = { token: FakeToken; user: FakeUser };

/**
 * GitLab looks for a personal access token in the `private_token` parameter, then the
 * `PRIVATE-TOKEN` header, then `Authorization: Bearer` (lib/gitlab/auth/auth_finders.rb,
 * extract_personal_access_token).
 */
export function extractToken(request: Request): string | null {
  const url = new URL(request.url);
  const fromQuery = url.searchParams.get('private_token');
  if (fromQuery) return fromQuery;
  const fromHeader = request.headers.get('private-token');
  if (fromHeader) return fromHeader;
  const authorization = request.headers.get('authorization');
  const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1] ?? null;
}

export function resolveCredential(state: FakeState, request: Request): Credential {
  const value = extractToken(request);
  if (value === null) return { kind: 'none' };
  const token = state.tokens.get(value);
  if (!token) return { kind: 'unknown' };
  // AccessTokenValidationService#validate checks expiry before revocation.
  if (isExpired(state, token)) return { kind: 'expired', token };
  if (token.revoked) return { kind: 'revoked', token };
  const user = state.users.get(token.userId);
  if (!user || user.state !== 'active') return { kind: 'unknown' };
  return { kind: 'ok', token, user };
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
      if (accepted.length > 0 && !credential.token.scopes.some((s) => accepted.includes(s))) {
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
