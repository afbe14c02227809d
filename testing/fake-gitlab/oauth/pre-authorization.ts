import type { OAuthErrorName } from './errors.ts';
import { redirectUriAllowed } from './redirect-uri.ts';
import { isKnownScope, parseScopes } from './scopes.ts';
import type { FakeOAuthApplication, OAuthState } from './state.ts';

/** A valid authorization request (Doorkeeper's PreAuthorization once `authorizable?`). */
export interface PreAuthorization {
  application: FakeOAuthApplication;
  redirectUri: string;
  responseType: 'code';
  /** Space separated, as the consent form sends it back. */
  scope: string;
  scopes: string[];
  state: string | null;
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
  nonce: string | null;
}

export type PreAuthorizationResult =
  | { ok: true; pre: PreAuthorization }
  | {
      ok: false;
      error: OAuthErrorName;
      /** Where an error may be sent (only after the redirect URI was validated). */
      redirectUri: string | null;
      state: string | null;
    };

/** Raw request parameters: absent ones are undefined. */
export type AuthorizeParams = Record<string, string | undefined>;

/** GitLab's default scope (Gitlab::Auth::DEFAULT_SCOPES), granted when the request names none and the app allows it. */
const DEFAULT_SCOPE = 'api';

function scopeFor(requested: string | undefined, application: FakeOAuthApplication): string {
  if (requested !== undefined && requested.trim() !== '') return requested;
  return application.scopes.includes(DEFAULT_SCOPE) ? DEFAULT_SCOPE : '';
}

/** Helpers::ScopeChecker.valid?: present, no control whitespace, every scope configured and allowed for the app. */
function scopeValid(scope: string, application: FakeOAuthApplication): boolean {
  if (scope.trim() === '' || /[\n\r\t]/.test(scope)) return false;
  return parseScopes(scope).every((s) => isKnownScope(s) && application.scopes.includes(s));
}

/**
 * Doorkeeper::OAuth::PreAuthorization's validations, in its order: client_id, client, redirect_uri,
 * params (response_type), response_type, scopes, then the code challenge method. GitLab accepts only
 * S256 for PKCE (OauthPreAuthorizationExtension#validate_code_challenge_method_s256).
 */
export function preAuthorize(oauth: OAuthState, params: AuthorizeParams): PreAuthorizationResult {
  const state = params.state ?? null;
  const fail = (error: OAuthErrorName, redirectUri: string | null = null): PreAuthorizationResult => ({
    ok: false,
    error,
    redirectUri,
    state,
  });
  const clientId = params.client_id;
  if (!clientId) return fail('invalid_request');
  const application = oauth.applications.get(clientId);
  if (!application) return fail('invalid_client');
  const redirectUri = params.redirect_uri;
  if (!redirectUri || !redirectUriAllowed(redirectUri, application.redirectUris)) return fail('invalid_redirect_uri');
  if (!params.response_type) return fail('invalid_request', redirectUri);
  if (params.response_type !== 'code') return fail('unsupported_response_type', redirectUri);
  const scope = scopeFor(params.scope, application);
  if (!scopeValid(scope, application)) return fail('invalid_scope', redirectUri);
  const codeChallenge = params.code_challenge || null;
  const codeChallengeMethod = params.code_challenge_method || null;
  if (codeChallenge !== null && codeChallengeMethod !== 'S256') return fail('invalid_code_challenge_method', redirectUri);
  return {
    ok: true,
    pre: {
      application,
      redirectUri,
      responseType: 'code',
      scope,
      scopes: [...new Set(parseScopes(scope))],
      state,
      codeChallenge,
      codeChallengeMethod,
      nonce: params.nonce || null,
    },
  };
}
