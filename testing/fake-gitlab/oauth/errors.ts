import type { Context } from 'hono';

/** The OAuth errors the fake answers with (Doorkeeper::Errors, RFC 6749 sections 4.1.2.1 and 5.2). */
export type OAuthErrorName =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'invalid_redirect_uri'
  | 'unauthorized_client'
  | 'unsupported_response_type'
  | 'unsupported_grant_type'
  | 'invalid_code_challenge_method'
  | 'access_denied';

/**
 * doorkeeper.errors.messages: GitLab's config/locales/doorkeeper.en.yml where it overrides Doorkeeper's
 * (invalid_request, invalid_redirect_uri), Doorkeeper's own config/locales/en.yml for the rest.
 */
export const OAUTH_ERROR_DESCRIPTIONS: Readonly<Record<OAuthErrorName, string>> = {
  invalid_request:
    'The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.',
  invalid_client:
    'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.',
  invalid_grant:
    'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.',
  invalid_scope: 'The requested scope is invalid, unknown, or malformed.',
  invalid_redirect_uri: 'The redirect URI included is not valid.',
  unauthorized_client: 'The client is not authorized to perform this request using this method.',
  unsupported_response_type: 'The authorization server does not support this response type.',
  unsupported_grant_type: 'The authorization grant type is not supported by the authorization server.',
  invalid_code_challenge_method: 'The code_challenge_method must be S256.',
  access_denied: 'The resource owner or authorization server denied the request.',
};

/** doorkeeper.errors.messages.revoke.unauthorized, sent with `unauthorized_client` by TokensController#revoke. */
export const REVOKE_UNAUTHORIZED_DESCRIPTION = 'You are not authorized to revoke this token';

/** ErrorResponse#body: error, error_description and state, blanks dropped. */
export function oauthErrorBody(name: OAuthErrorName, state?: string | null): Record<string, string> {
  const body: Record<string, string> = { error: name, error_description: OAUTH_ERROR_DESCRIPTIONS[name] };
  if (state) body.state = state;
  return body;
}

/** ErrorResponse#redirectable?: never towards a client or redirect URI that failed validation. */
export function redirectable(name: OAuthErrorName): boolean {
  return name !== 'invalid_redirect_uri' && name !== 'invalid_client' && name !== 'unauthorized_client';
}

/** ErrorResponse#status: 401 for client authentication failures, 400 otherwise. */
export function oauthErrorStatus(name: OAuthErrorName): 400 | 401 {
  return name === 'invalid_client' || name === 'unauthorized_client' ? 401 : 400;
}

/**
 * The JSON error of the token, revoke and token info endpoints with ErrorResponse#headers: no caching
 * and a Bearer challenge in Doorkeeper's default realm.
 */
export function oauthErrorResponse(c: Context, name: OAuthErrorName, state?: string | null): Response {
  const description = OAUTH_ERROR_DESCRIPTIONS[name];
  c.header('Cache-Control', 'no-store');
  c.header('Pragma', 'no-cache');
  c.header('WWW-Authenticate', `Bearer realm="Doorkeeper", error="${name}", error_description="${description}"`);
  return c.json(oauthErrorBody(name, state), oauthErrorStatus(name));
}

/** doorkeeper.errors.messages.invalid_token.unknown (Doorkeeper's config/locales/en.yml, repeated in GitLab's). */
export const INVALID_TOKEN_DESCRIPTION = 'The access token is invalid';

/**
 * Doorkeeper::OAuth::InvalidTokenResponse as GitLab's token info controller renders it: 401 `invalid_token`.
 * Its constructor passes `state: :unauthorized` to ErrorResponse, so the body carries `"state":"unauthorized"`;
 * ErrorResponse#headers (Doorkeeper 5.8) send `Cache-Control: no-store, no-cache` and the Bearer challenge.
 */
export function invalidTokenResponse(c: Context): Response {
  c.header('Cache-Control', 'no-store, no-cache');
  c.header('WWW-Authenticate', `Bearer realm="Doorkeeper", error="invalid_token", error_description="${INVALID_TOKEN_DESCRIPTION}"`);
  return c.json({ error: 'invalid_token', error_description: INVALID_TOKEN_DESCRIPTION, state: 'unauthorized' }, 401);
}
