import type { Context, Hono } from 'hono';
import type { AppEnv, Deps } from '../context.ts';
import { OAUTH_ERROR_DESCRIPTIONS, oauthErrorBody, oauthErrorStatus, redirectable } from '../oauth/errors.ts';
import { preAuthorize, type PreAuthorization, type PreAuthorizationResult } from '../oauth/pre-authorization.ts';
import { withQuery } from '../oauth/redirect-uri.ts';
import { createGrant, matchingToken } from '../oauth/state.ts';
import { readParams, stringParams } from '../params.ts';
import type { FakeUser } from '../state.ts';
import { authorizationErrorPage, consentPage, redirectPage, rejectedPage } from '../web/pages.ts';
import { basePathOf, csrfTokenValid, currentSession, ensureSession, type WebSession } from '../web/session.ts';

/** Issues an authorization code and builds the redirect carrying it (CodeResponse: `code`, then `state`). */
function codeRedirect(deps: Deps, pre: PreAuthorization, user: FakeUser): string {
  const grant = createGrant(
    deps.state.oauth,
    {
      application: pre.application,
      userId: user.id,
      redirectUri: pre.redirectUri,
      scopes: pre.scopes,
      codeChallenge: pre.codeChallenge,
      codeChallengeMethod: pre.codeChallengeMethod,
    },
    deps.state.now().getTime(),
  );
  return withQuery(pre.redirectUri, { code: grant.code, state: pre.state });
}

function signedInUser(deps: Deps, session: WebSession | null): FakeUser | null {
  if (!session || session.userId === null) return null;
  const user = deps.state.users.get(session.userId);
  return user && user.state === 'active' ? user : null;
}

/** The auto-approval user, when tests switched it on. */
function autoApprovedUser(deps: Deps): FakeUser | null {
  const id = deps.state.oauth.settings.autoApproveUserId;
  return id === null ? null : (deps.state.users.get(id) ?? null);
}

/**
 * The resource_owner_authenticator in config/initializers/doorkeeper.rb: without a signed-in user,
 * remember where to come back to (`user_return_to`) and send the browser to the sign-in page.
 */
function signInFirst(c: Context<AppEnv>, deps: Deps, returnTo: string | null): Response {
  const session = ensureSession(c, deps.state.web, deps.site.baseUrl);
  session.returnTo = returnTo;
  return c.redirect(`${deps.site.baseUrl}/users/sign_in`, 302);
}

/**
 * AuthorizationsController#redirect_or_render for a failed POST or DELETE: back to the client with
 * `error`, `error_description` and `state` when the client and redirect URI were valid, otherwise the
 * error as JSON.
 */
function errorAnswer(c: Context<AppEnv>, result: Extract<PreAuthorizationResult, { ok: false }>): Response {
  if (redirectable(result.error) && result.redirectUri !== null) {
    return c.redirect(withQuery(result.redirectUri, oauthErrorBody(result.error, result.state)), 302);
  }
  return c.json(oauthErrorBody(result.error, result.state), oauthErrorStatus(result.error));
}

/** The consent form's hidden fields, as app/views/doorkeeper/authorizations/new.html.haml writes them. */
function consentFields(pre: PreAuthorization): Record<string, string | null> {
  return {
    client_id: pre.application.clientId,
    redirect_uri: pre.redirectUri,
    state: pre.state,
    response_type: pre.responseType,
    scope: pre.scope,
    nonce: pre.nonce,
    code_challenge: pre.codeChallenge,
    code_challenge_method: pre.codeChallengeMethod,
  };
}

function redirectHost(uri: string): string | null {
  const url = new URL(uri);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const host = url.hostname.replace(/^www\./, '');
  return host === 'localhost' ? null : host;
}

/**
 * GET, POST and DELETE /oauth/authorize: Oauth::AuthorizationsController on top of Doorkeeper's.
 * GET validates the request and shows the consent page, or GitLab's error page for any invalid request
 * (GitLab's #new renders "doorkeeper/authorizations/error" and never redirects an error). A confidential
 * application the user already authorized with the same scopes skips consent through the "Redirecting"
 * page. POST approves and DELETE (or POST with `_method=delete`, Rails' method override) denies, each
 * answering with a redirect to the client. The auto-approve switch skips sign-in and consent.
 */
export function registerOAuthAuthorizeRoutes(root: Hono<AppEnv>, deps: Deps): void {
  root.get('/oauth/authorize', (c) => {
    const autoApproved = autoApprovedUser(deps);
    const session = currentSession(c, deps.state.web);
    const user = autoApproved ?? signedInUser(deps, session);
    if (!user) {
      const url = new URL(c.req.url);
      return signInFirst(c, deps, `${url.pathname}${url.search}`);
    }
    const params: Record<string, string | undefined> = Object.fromEntries(new URL(c.req.url).searchParams);
    const result = preAuthorize(deps.state.oauth, params);
    if (!result.ok) return c.html(authorizationErrorPage(OAUTH_ERROR_DESCRIPTIONS[result.error]));
    const { pre } = result;
    if (autoApproved) return c.redirect(codeRedirect(deps, pre, user), 302);
    const nowMs = deps.state.now().getTime();
    if (pre.application.confidential && matchingToken(deps.state.oauth, pre.application.id, user.id, pre.scopes, nowMs)) {
      return c.html(redirectPage(codeRedirect(deps, pre, user)));
    }
    const web = ensureSession(c, deps.state.web, deps.site.baseUrl);
    return c.html(
      consentPage({
        action: `${basePathOf(deps.site.baseUrl)}/oauth/authorize`,
        csrfToken: web.csrfToken,
        applicationName: pre.application.name,
        user,
        scopes: pre.scopes,
        redirectHost: redirectHost(pre.redirectUri),
        fields: consentFields(pre),
      }),
    );
  });

  const decide = async (c: Context<AppEnv>, method: 'POST' | 'DELETE'): Promise<Response> => {
    const raw = await readParams(c);
    if (raw instanceof Response) return raw;
    const params = stringParams(raw);
    const session = currentSession(c, deps.state.web);
    // protect_from_forgery: a form without this session's authenticity token is rejected.
    if (!csrfTokenValid(session, params.authenticity_token)) return c.html(rejectedPage(), 422);
    const user = signedInUser(deps, session) ?? autoApprovedUser(deps);
    if (!user) return signInFirst(c, deps, null);
    const result = preAuthorize(deps.state.oauth, params);
    if (!result.ok) return errorAnswer(c, result);
    const deny = method === 'DELETE' || params._method?.toLowerCase() === 'delete';
    if (deny) return c.redirect(withQuery(result.pre.redirectUri, oauthErrorBody('access_denied', result.pre.state)), 302);
    return c.redirect(codeRedirect(deps, result.pre, user), 302);
  };
  root.post('/oauth/authorize', (c) => decide(c, 'POST'));
  root.delete('/oauth/authorize', (c) => decide(c, 'DELETE'));
}
