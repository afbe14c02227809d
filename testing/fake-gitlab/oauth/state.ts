import { randomBytes } from 'node:crypto';
import { isKnownScope } from './scopes.ts';

/** An OAuth application (Authn::OauthApplication, a Doorkeeper application). */
export interface FakeOAuthApplication {
  id: number;
  name: string;
  /** Doorkeeper's `uid`: 64 hex characters. */
  clientId: string;
  /** `gloas-` and 64 hex characters (Gitlab::DoorkeeperSecretStoring::Token::UniqueApplicationToken). */
  clientSecret: string;
  redirectUris: string[];
  scopes: string[];
  /** Confidential applications must authenticate with their secret; public ones send only the client id. */
  confidential: boolean;
  createdAt: string;
}

/** An authorization code (Doorkeeper's access grant). */
export interface FakeOAuthGrant {
  id: number;
  code: string;
  applicationId: number;
  userId: number;
  /** The redirect_uri of the authorization request; the code exchange must present a matching one. */
  redirectUri: string;
  scopes: string[];
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
  createdAtMs: number;
  /** Doorkeeper's authorization_code_expires_in default, 10 minutes. */
  expiresInSeconds: number;
  /** Set when the code is exchanged: codes are single-use. */
  revokedAtMs: number | null;
}

/**
 * An OAuth access token and its refresh token: Doorkeeper keeps both on one record, so revoking either
 * revokes the pair.
 */
export interface FakeOAuthToken {
  id: number;
  /** 64 hex characters, no prefix (GitLab keeps OAuth access tokens unprefixed). */
  token: string;
  refreshToken: string;
  applicationId: number;
  userId: number;
  scopes: string[];
  createdAtMs: number;
  expiresInSeconds: number;
  revokedAtMs: number | null;
  /** The refresh token this one replaced, until the old pair is revoked ('' when none, as in GitLab's column). */
  previousRefreshToken: string;
  grantType: 'authorization_code' | 'refresh_token';
}

/**
 * When a refresh revokes the pair it replaces. GitLab's documentation says a refresh "invalidates the
 * existing access_token and refresh_token" (doc/api/oauth2.md); Doorkeeper actually revokes the old pair
 * when the new access token is first used, because GitLab's oauth_access_tokens table has a
 * previous_refresh_token column (AccessTokenMixin#revoke_previous_refresh_token!, called from
 * Gitlab::Auth::AuthFinders#find_oauth_access_token).
 */
export type OAuthRefreshRevocation = 'immediately' | 'on-first-use';

export interface OAuthStats {
  /** Authorization codes issued (consent, auto-approval or a matching earlier token). */
  authorizations: number;
  codeExchanges: number;
  refreshes: number;
  revocations: number;
}

export interface OAuthSettings {
  tokenLifetimeSeconds: number;
  /** When set, /oauth/authorize approves at once for this user. */
  autoApproveUserId: number | null;
  refreshRevocation: OAuthRefreshRevocation;
}

export interface OAuthState {
  applications: Map<string, FakeOAuthApplication>;
  grants: Map<string, FakeOAuthGrant>;
  /** By access token value. */
  tokens: Map<string, FakeOAuthToken>;
  /** The same records by refresh token value. */
  refreshTokens: Map<string, FakeOAuthToken>;
  settings: OAuthSettings;
  stats: OAuthStats;
  nextId: { application: number; grant: number; token: number };
}

export interface AddOAuthApplicationInput {
  name?: string;
  redirectUri: string | string[];
  scopes: string[];
  /** Default true, as in GitLab's application form. */
  confidential?: boolean;
}

/** doc/api/oauth2.md: access tokens live two hours (access_token_expires_in 7200). */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 7200;
const CODE_LIFETIME_SECONDS = 600;

export function createOAuthState(options: { tokenLifetimeSeconds?: number; refreshRevocation?: OAuthRefreshRevocation } = {}): OAuthState {
  return {
    applications: new Map(),
    grants: new Map(),
    tokens: new Map(),
    refreshTokens: new Map(),
    settings: {
      tokenLifetimeSeconds: checkedLifetime(options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS),
      autoApproveUserId: null,
      refreshRevocation: options.refreshRevocation ?? 'immediately',
    },
    stats: { authorizations: 0, codeExchanges: 0, refreshes: 0, revocations: 0 },
    nextId: { application: 1, grant: 1, token: 1 },
  };
}

export function checkedLifetime(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`token lifetime must be a whole number of seconds >= 1, got ${seconds}`);
  return seconds;
}

/** Doorkeeper's default generator with GitLab's `default_generator_method :hex`: SecureRandom.hex(32). */
function hexToken(): string {
  return randomBytes(32).toString('hex');
}

export function addApplication(oauth: OAuthState, input: AddOAuthApplicationInput, createdAt: string): FakeOAuthApplication {
  const redirectUris = (Array.isArray(input.redirectUri) ? input.redirectUri : [input.redirectUri]).flatMap((u) => u.split(/\s+/)).filter((u) => u !== '');
  if (redirectUris.length === 0) throw new Error('an OAuth application needs a redirect URI');
  for (const uri of redirectUris) {
    // Doorkeeper's RedirectUriValidator: absolute, no fragment; GitLab forbids data:, vbscript: and javascript:.
    let parsed: URL;
    try {
      parsed = new URL(uri);
    } catch {
      throw new Error(`redirect URI must be an absolute URI, got ${uri}`);
    }
    if (parsed.hash !== '') throw new Error(`redirect URI cannot contain a fragment: ${uri}`);
    if (['data:', 'vbscript:', 'javascript:'].includes(parsed.protocol)) throw new Error(`redirect URI is forbidden: ${uri}`);
  }
  if (input.scopes.length === 0) throw new Error('an OAuth application needs at least one scope');
  for (const scope of input.scopes) {
    if (!isKnownScope(scope)) throw new Error(`unknown OAuth scope ${scope}`);
  }
  const application: FakeOAuthApplication = {
    id: oauth.nextId.application++,
    name: input.name ?? 'forgelink',
    clientId: hexToken(),
    clientSecret: `gloas-${hexToken()}`,
    redirectUris,
    scopes: [...new Set(input.scopes)],
    confidential: input.confidential ?? true,
    createdAt,
  };
  oauth.applications.set(application.clientId, application);
  return application;
}

export function applicationById(oauth: OAuthState, id: number): FakeOAuthApplication | undefined {
  for (const application of oauth.applications.values()) {
    if (application.id === id) return application;
  }
  return undefined;
}

export interface GrantInput {
  application: FakeOAuthApplication;
  userId: number;
  redirectUri: string;
  scopes: string[];
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
}

export function createGrant(oauth: OAuthState, input: GrantInput, nowMs: number): FakeOAuthGrant {
  const grant: FakeOAuthGrant = {
    id: oauth.nextId.grant++,
    code: hexToken(),
    applicationId: input.application.id,
    userId: input.userId,
    redirectUri: input.redirectUri,
    scopes: [...input.scopes],
    codeChallenge: input.codeChallenge,
    codeChallengeMethod: input.codeChallengeMethod,
    createdAtMs: nowMs,
    expiresInSeconds: CODE_LIFETIME_SECONDS,
    revokedAtMs: null,
  };
  oauth.grants.set(grant.code, grant);
  oauth.stats.authorizations += 1;
  return grant;
}

/** Doorkeeper's Expirable#expired?: strictly after created_at + expires_in. */
function expired(createdAtMs: number, expiresInSeconds: number, nowMs: number): boolean {
  return nowMs > createdAtMs + expiresInSeconds * 1000;
}

/** Doorkeeper's Revocable#revoked?: revoked_at set and not in the future. */
function revoked(revokedAtMs: number | null, nowMs: number): boolean {
  return revokedAtMs !== null && revokedAtMs <= nowMs;
}

export function grantAccessible(grant: FakeOAuthGrant, nowMs: number): boolean {
  return !expired(grant.createdAtMs, grant.expiresInSeconds, nowMs) && !revoked(grant.revokedAtMs, nowMs);
}

export function tokenExpired(token: FakeOAuthToken, nowMs: number): boolean {
  return expired(token.createdAtMs, token.expiresInSeconds, nowMs);
}

export function tokenRevoked(token: FakeOAuthToken, nowMs: number): boolean {
  return revoked(token.revokedAtMs, nowMs);
}

export function tokenAccessible(token: FakeOAuthToken, nowMs: number): boolean {
  return !tokenExpired(token, nowMs) && !tokenRevoked(token, nowMs);
}

/** Doorkeeper's expires_in_seconds: the remaining lifetime, rounded, never negative. */
export function expiresInSeconds(token: FakeOAuthToken, nowMs: number): number {
  return Math.max(0, Math.round((token.createdAtMs + token.expiresInSeconds * 1000 - nowMs) / 1000));
}

export interface IssueInput {
  application: FakeOAuthApplication;
  userId: number;
  scopes: string[];
  grantType: FakeOAuthToken['grantType'];
  previousRefreshToken?: string;
}

export function issueToken(oauth: OAuthState, input: IssueInput, nowMs: number): FakeOAuthToken {
  const token: FakeOAuthToken = {
    id: oauth.nextId.token++,
    token: hexToken(),
    refreshToken: hexToken(),
    applicationId: input.application.id,
    userId: input.userId,
    scopes: [...input.scopes],
    createdAtMs: nowMs,
    expiresInSeconds: oauth.settings.tokenLifetimeSeconds,
    revokedAtMs: null,
    previousRefreshToken: input.previousRefreshToken ?? '',
    grantType: input.grantType,
  };
  oauth.tokens.set(token.token, token);
  oauth.refreshTokens.set(token.refreshToken, token);
  return token;
}

export function revokeToken(token: FakeOAuthToken, nowMs: number): void {
  if (token.revokedAtMs === null) token.revokedAtMs = nowMs;
}

/** AccessTokenMixin#revoke_previous_refresh_token!: the first use of a refreshed token retires the old pair. */
export function revokePreviousRefreshToken(oauth: OAuthState, token: FakeOAuthToken, nowMs: number): void {
  if (token.previousRefreshToken === '') return;
  const previous = oauth.refreshTokens.get(token.previousRefreshToken);
  if (previous) revokeToken(previous, nowMs);
  token.previousRefreshToken = '';
}

/**
 * AccessTokenMixin.matching_token_for: the user's newest unrevoked token for the application that carries
 * exactly the requested scopes (expired ones count).
 */
export function matchingToken(oauth: OAuthState, applicationId: number, userId: number, scopes: string[], nowMs: number): FakeOAuthToken | undefined {
  const wanted = new Set(scopes);
  let newest: FakeOAuthToken | undefined;
  for (const token of oauth.tokens.values()) {
    if (token.applicationId !== applicationId || token.userId !== userId || tokenRevoked(token, nowMs)) continue;
    if (token.scopes.length !== wanted.size || !token.scopes.every((s) => wanted.has(s))) continue;
    if (!newest || token.id > newest.id) newest = token;
  }
  return newest;
}

/** The record behind an access or a refresh token. */
export function findTokenRecord(oauth: OAuthState, value: string): FakeOAuthToken | undefined {
  return oauth.tokens.get(value) ?? oauth.refreshTokens.get(value);
}
