import { createHash } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import {
  CLONE_SCOPES,
  auditEntry,
  type AuditStore,
  InputError,
  UpstreamError,
  capabilitiesFromScopes,
  connectionView,
  hostOf,
  normaliseBaseUrl,
  type Account,
  type Clock,
  type Connection,
  type ConnectionStore,
  type ConnectionView,
  type GitLabClientFactory,
  type GitLabOAuthClient,
  type GitLabOAuthClients,
  type GitLabOAuthFlow,
  type OAuthState,
  type OAuthStateStore,
  type OAuthTokenSet,
  type SecretBinding,
  type Vault,
} from '../core/index.ts';
import { bindingForSecret } from '../vault/index.ts';
import { REFRESH_TOKEN_PURPOSE, TOKEN_PURPOSE } from '../tokens/index.ts';

/** How long a started authorization may take at GitLab before its callback is refused. */
export const STATE_LIFETIME_MS = 10 * 60_000;
/** Old states are swept when a new flow starts; used ones are kept this long so a replay still reads as one. */
const STATE_RETENTION_MS = 24 * 3600_000;

export type OAuthFlowDeps = {
  states: OAuthStateStore;
  store: ConnectionStore;
  vault: Vault;
  oauth: GitLabOAuthClients;
  gitlab: GitLabClientFactory;
  clock: Clock;
  newId: (prefix: string) => string;
  allowHttp: boolean;
  logger?: { info(meta: object, message: string): void; warn(meta: object, message: string): void };
  audit?: AuditStore;
};

function hashState(state: string): string {
  return createHash('sha256').update(state, 'utf8').digest('hex');
}

function verifierBinding(state: Pick<OAuthState, 'userId' | 'id'>): SecretBinding {
  return { ownerId: state.userId, recordId: state.id, purpose: 'pkce_verifier' };
}

function invalidState(message: string): InputError {
  return new InputError('invalid_state', message, { field: 'state' });
}

/**
 * The authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636 S256) against the operator's OAuth
 * application on an instance (core `GitLabOAuthFlow`). The `state` is random, stored only as its hash, bound
 * to the user and the browser session, and single use: it is spent the moment its callback arrives, whatever
 * happens next. The PKCE verifier is sealed in the vault until then.
 */
export function createOAuthFlow(deps: OAuthFlowDeps): GitLabOAuthFlow {
  const { states, vault, clock } = deps;

  function clientFor(baseUrl: string): GitLabOAuthClient {
    const client = deps.oauth.forBaseUrl(baseUrl);
    if (client === null) {
      throw new InputError('oauth_not_configured', `forgelink has no OAuth application for ${baseUrl}; connect it with a personal access token instead.`, {
        field: 'baseUrl',
      });
    }
    return client;
  }

  /** The instance asked for; with none given, the only configured one (or gitlab.com). */
  function chooseBaseUrl(raw: string): string {
    if (raw.trim() === '') {
      const [only, ...others] = deps.oauth.instances();
      return only !== undefined && others.length === 0 ? only : 'https://gitlab.com';
    }
    return normaliseBaseUrl(raw, { allowHttp: deps.allowHttp });
  }

  async function start(input: { userId: string; sessionId: string; baseUrl: string }): Promise<{ authorizeUrl: string }> {
    const baseUrl = chooseBaseUrl(input.baseUrl);
    const client = clientFor(baseUrl);
    const now = clock.now();
    await states.deleteStatesBefore(new Date(now.getTime() - STATE_RETENTION_MS).toISOString());
    const state = oauth.generateRandomState();
    const verifier = oauth.generateRandomCodeVerifier();
    const id = deps.newId('ost');
    await states.saveState({
      id,
      stateHash: hashState(state),
      sessionId: input.sessionId,
      userId: input.userId,
      baseUrl,
      verifierSealed: vault.seal(verifier, verifierBinding({ userId: input.userId, id })),
      createdAt: now.toISOString(),
      usedAt: null,
    });
    return { authorizeUrl: client.authorizeUrl({ state, codeChallenge: await oauth.calculatePKCECodeChallenge(verifier) }) };
  }

  /** The stored state this callback belongs to, spent now; InputError `invalid_state` for anything else. */
  async function spendState(userId: string, sessionId: string, state: string): Promise<OAuthState> {
    if (state === '') throw invalidState('The callback from GitLab carries no state, so it cannot be matched to a Connect Account you started.');
    const now = clock.now();
    const found = await states.consumeState(hashState(state), now.toISOString());
    if (found === null) throw invalidState('The callback from GitLab does not match any Connect Account forgelink started.');
    if (!found.firstUse) throw invalidState('This callback from GitLab was already used; each Connect Account can be finished once.');
    const stored = found.state;
    // Another user's or another browser session's state reads like an unknown one: no hint that it exists.
    if (stored.userId !== userId || stored.sessionId !== sessionId) {
      throw invalidState('The callback from GitLab does not match any Connect Account started in this browser session.');
    }
    if (now.getTime() - Date.parse(stored.createdAt) > STATE_LIFETIME_MS) {
      throw invalidState(`This Connect Account was started more than ${STATE_LIFETIME_MS / 60_000} minutes ago and has expired; start again.`);
    }
    return stored;
  }

  async function exchange(client: GitLabOAuthClient, parameters: URLSearchParams, verifier: string): Promise<OAuthTokenSet> {
    try {
      return await client.exchangeCode(parameters, verifier);
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      deps.logger?.warn({ baseUrl: client.baseUrl, reason: error.reason }, 'oauth code exchange failed');
      throw new InputError('exchange_failed', `GitLab did not exchange the authorization code for a token: ${error.message}`, { cause: error });
    }
  }

  /** Who the token belongs to and what it may do; revokes it again when it is of no use to a run. */
  async function inspect(
    client: GitLabOAuthClient,
    baseUrl: string,
    caPem: string | null,
    tokens: OAuthTokenSet,
  ): Promise<{ scopes: string[]; account: Account | null; instanceVersion: string | null }> {
    try {
      const details = await client.tokenInfo(tokens.accessToken);
      const scopes = details.scopes.length > 0 ? details.scopes : (tokens.scopes ?? []);
      const cloneScopes: readonly string[] = CLONE_SCOPES;
      if (!scopes.some((scope) => cloneScopes.includes(scope))) {
        throw new InputError(
          'insufficient_scope',
          `GitLab granted only ${scopes.join(', ') || 'no scopes'}, which cannot clone. The operator should configure the OAuth application with api (or read_repository and write_repository).`,
        );
      }
      let account: Account | null = null;
      let instanceVersion: string | null = null;
      if (capabilitiesFromScopes(scopes).readUser) {
        const api = deps.gitlab({ baseUrl, caPem }, { token: tokens.accessToken, kind: 'oauth' });
        try {
          account = await api.currentUser();
          // Informative only; an instance that hides it still works.
          instanceVersion = await api.metadata().then((meta) => meta.version, () => null);
        } finally {
          await api.close();
        }
      }
      return { scopes, account, instanceVersion };
    } catch (error) {
      await Promise.allSettled([
        ...(tokens.refreshToken === null ? [] : [client.revoke(tokens.refreshToken, 'refresh_token')]),
        client.revoke(tokens.accessToken, 'access_token'),
      ]);
      if (error instanceof UpstreamError) {
        throw new InputError('exchange_failed', `GitLab issued a token, but forgelink could not inspect it: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  async function finish(input: { userId: string; sessionId: string; query: Readonly<Record<string, string>> }): Promise<ConnectionView> {
    const { userId, query } = input;
    const state = query.state ?? '';
    const stored = await spendState(userId, input.sessionId, state);
    const client = clientFor(stored.baseUrl);
    const checked = client.validateCallback(new URLSearchParams(query), state);
    if (!checked.ok) {
      if (checked.error === 'access_denied') {
        throw new InputError('access_denied', 'The authorization was declined at GitLab, so nothing was connected.');
      }
      // The description comes from the query string, so anyone can write it: kept short, shown as text only.
      const said = checked.description === null ? '' : `: ${checked.description.slice(0, 200)}`;
      throw new InputError('authorization_failed', `GitLab did not authorize forgelink (${checked.error.slice(0, 64)}${said}).`);
    }
    const verifier = vault.open(stored.verifierSealed, verifierBinding(stored));
    const tokens = await exchange(client, checked.parameters, verifier);
    if (tokens.refreshToken === null) {
      await client.revoke(tokens.accessToken, 'access_token').catch(() => {});
      throw new InputError('exchange_failed', 'GitLab issued no refresh token, so the connection would stop working within two hours.');
    }
    const caPem = client.caPem;
    const { scopes, account, instanceVersion } = await inspect(client, stored.baseUrl, caPem, tokens);

    const now = clock.now().toISOString();
    const host = hostOf(stored.baseUrl);
    const connection: Connection = {
      id: deps.newId('con'),
      userId,
      provider: 'gitlab',
      kind: 'oauth',
      baseUrl: stored.baseUrl,
      host,
      label: account === null ? host : `@${account.username} on ${host}`,
      account,
      scopes,
      // The authorization itself does not expire; the access token does, and is refreshed.
      expiresAt: null,
      tokenExpiresAt: tokens.expiresAt,
      rotation: null,
      credentials: null,
      policy: {},
      status: 'active',
      statusReason: null,
      caPem,
      instanceVersion,
      checkedAt: now,
      createdAt: now,
    };
    const secretOf = (purpose: string, value: string) => {
      const secret = { id: deps.newId('sec'), ownerId: userId, connectionId: connection.id, purpose };
      return { ...secret, sealed: vault.seal(value, bindingForSecret(secret)) };
    };
    await deps.store.createConnection(connection, [secretOf(TOKEN_PURPOSE, tokens.accessToken), secretOf(REFRESH_TOKEN_PURPOSE, tokens.refreshToken)]);
    deps.logger?.info({ connectionId: connection.id, baseUrl: stored.baseUrl, accountId: account?.id ?? null }, 'oauth connection created');
    await deps.audit?.record(
      auditEntry(clock.now(), {
        ownerId: userId,
        actor: userId,
        action: 'connection.created',
        connectionId: connection.id,
        details: { kind: 'oauth', host: connection.host, scopes: connection.scopes, account: account?.username ?? null },
      }),
    );
    return connectionView(connection, clock.now());
  }

  return { instances: () => deps.oauth.instances(), start, finish };
}
