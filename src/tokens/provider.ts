import {
  ConflictError,
  NotFoundError,
  SealedTokenError,
  UpstreamError,
  isRotationDue,
  tokenState,
  type Clock,
  type Connection,
  type ConnectionStore,
  type GitLabOAuthClients,
  type LockedConnection,
  type StoredSecret,
  type TokenProvider,
  type Vault,
} from '../core/index.ts';
import { bindingForSecret } from '../vault/index.ts';
import type { RotatorForTokens } from './rotation-types.ts';
import { openSecret, REFRESH_TOKEN_PURPOSE, TOKEN_PURPOSE } from './sealed.ts';

/** GitLab access tokens live two hours (docs/gitlab.md, "OAuth 2.0"); one this close to its end is refreshed first. */
export const DEFAULT_REFRESH_MARGIN_MS = 2 * 60_000;

export type TokenProviderLogger = { info(meta: object, message: string): void; warn(meta: object, message: string): void };

export type TokenProviderDeps = {
  store: ConnectionStore;
  vault: Vault;
  oauth: GitLabOAuthClients;
  clock: Clock;
  /** How long before its expiry an access token is refreshed; default DEFAULT_REFRESH_MARGIN_MS. */
  refreshMarginMs?: number;
  logger?: TokenProviderLogger;
  /**
   * Rotates a personal access token that opted in and is due before handing it out, and completes a rotation another
   * process left half done. Without it, personal access tokens are handed out as stored.
   */
  rotator?: RotatorForTokens;
  /** Told of each refresh this process asked GitLab for (the token refresh metric). */
  onRefresh?: (outcome: 'refreshed' | 'failed') => void;
};

/** Why a refresh is wanted: the token is about to expire, or GitLab already refused it. */
type Want = 'expiring' | 'refused';

type Outcome = { ok: true; token: string } | { ok: false; error: unknown };

/** Whether GitLab refused the token itself (401), as opposed to a missing scope, a 404 or a network failure. */
export function isTokenRejection(error: unknown): boolean {
  return error instanceof UpstreamError && error.status === 401;
}

/**
 * The token provider (core `TokenProvider`). A refresh invalidates the previous pair at GitLab, so two
 * processes refreshing one connection at once would leave one of them with a dead pair, and the connection
 * lost. Every refresh therefore happens inside `withConnectionLock` (a row lock on PostgreSQL, the write lock
 * on SQLite): the holder re-reads the stored pair, uses it when another holder already replaced the token the
 * caller had, and otherwise refreshes and writes the new pair and its expiry before the lock is released and
 * before the token is handed to anyone. Within one process, concurrent refreshes of a connection share one.
 */
export function createTokenProvider(deps: TokenProviderDeps): TokenProvider {
  const { store, vault, clock } = deps;
  const margin = deps.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  const inflight = new Map<string, Promise<string>>();

  function open(secret: StoredSecret): string {
    return openSecret(vault, secret);
  }

  /** A stored token that does not open makes the connection `invalid`, with what to do as its reason, before the caller hears. */
  async function unopened<T>(connection: Connection, get: () => Promise<T>): Promise<T> {
    try {
      return await get();
    } catch (error) {
      if (!(error instanceof SealedTokenError)) throw error;
      const state = tokenState({ kind: 'failed', error, asked: 'token' });
      if (state.error !== null && state.status !== 'unchanged') {
        await store.updateConnection(connection.userId, connection.id, { status: state.status, statusReason: state.error.message, checkedAt: clock.now().toISOString() });
      }
      deps.logger?.warn({ connectionId: connection.id, code: error.code, keyId: error.keyId }, 'stored token cannot be opened; connection marked invalid');
      throw error;
    }
  }

  function expiring(tokenExpiresAt: string | null): boolean {
    return tokenExpiresAt !== null && Date.parse(tokenExpiresAt) - clock.now().getTime() <= margin;
  }

  async function storedToken(connection: Connection): Promise<string> {
    const secret = await store.getSecret(connection.userId, connection.id, TOKEN_PURPOSE);
    if (secret === null) throw new ConflictError('token_missing', `Connection ${connection.id} has no stored token.`);
    return open(secret);
  }

  /** Inside the connection's lock: the stored token, or a refreshed one written back before the lock is released. */
  async function refreshHolding(locked: LockedConnection, staleToken: string, want: Want): Promise<Outcome> {
    const { connection } = locked;
    const accessSecret = await locked.getSecret(TOKEN_PURPOSE);
    const refreshSecret = await locked.getSecret(REFRESH_TOKEN_PURPOSE);
    if (accessSecret === null || refreshSecret === null) {
      return { ok: false, error: new ConflictError('token_missing', `Connection ${connection.id} has no stored OAuth token pair; reconnect it.`) };
    }
    const stored = open(accessSecret);
    // Another process or caller refreshed while we waited for the lock: its token is the one to use.
    if (stored !== staleToken) return { ok: true, token: stored };
    if (want === 'expiring' && !expiring(connection.tokenExpiresAt)) return { ok: true, token: stored };

    const client = deps.oauth.forBaseUrl(connection.baseUrl);
    if (client === null) {
      return {
        ok: false,
        error: new ConflictError(
          'oauth_not_configured',
          `No OAuth application is configured for ${connection.baseUrl} any more, so this connection's token cannot be renewed. The operator must add it back to FORGELINK_GITLAB_OAUTH_APPS.`,
        ),
      };
    }
    let tokens;
    try {
      tokens = await client.refresh(open(refreshSecret));
      deps.onRefresh?.('refreshed');
    } catch (error) {
      deps.onRefresh?.('failed');
      // A refused refresh (invalid_grant: the grant was revoked) is recorded as a check would record it, in the lock's
      // transaction, which commits because this callback resolves.
      const state = tokenState({ kind: 'failed', error, asked: 'token' });
      if (state.error !== null && state.status !== 'unchanged') {
        await locked.update({ patch: { status: state.status, statusReason: state.error.message, checkedAt: clock.now().toISOString() } });
        deps.logger?.warn({ connectionId: connection.id, status: state.status }, 'oauth refresh failed; connection status recorded');
      }
      return { ok: false, error };
    }
    const secrets = [{ id: accessSecret.id, sealed: vault.seal(tokens.accessToken, bindingForSecret(accessSecret)) }];
    if (tokens.refreshToken !== null) {
      secrets.push({ id: refreshSecret.id, sealed: vault.seal(tokens.refreshToken, bindingForSecret(refreshSecret)) });
    }
    await locked.update({
      secrets,
      patch: {
        tokenExpiresAt: tokens.expiresAt,
        status: 'active',
        statusReason: null,
        ...(tokens.scopes === null ? {} : { scopes: tokens.scopes }),
      },
    });
    deps.logger?.info({ connectionId: connection.id, tokenExpiresAt: tokens.expiresAt }, 'oauth token refreshed');
    return { ok: true, token: tokens.accessToken };
  }

  function refreshOnce(connection: Connection, staleToken: string, want: Want): Promise<string> {
    // Callers in this process holding the same stale token share one trip through the lock.
    const key = `${connection.id}\0${staleToken}`;
    const running = inflight.get(key);
    if (running !== undefined) return running;
    const refreshing = (async () => {
      const outcome = await store.withConnectionLock(connection.userId, connection.id, (locked) => refreshHolding(locked, staleToken, want));
      if (outcome === null) {
        throw new NotFoundError('connection_not_found', `Connection ${connection.id} does not exist (it may have been disconnected).`);
      }
      if (!outcome.ok) throw outcome.error;
      return outcome.token;
    })().finally(() => inflight.delete(key));
    inflight.set(key, refreshing);
    return refreshing;
  }

  /** The row as it is now, not as the caller loaded it: a rotation or refresh elsewhere may have changed it. */
  async function freshRow(connection: Connection): Promise<Connection> {
    const fresh = await store.getConnection(connection.userId, connection.id);
    if (fresh === null) {
      throw new NotFoundError('connection_not_found', `Connection ${connection.id} does not exist (it may have been disconnected).`);
    }
    return fresh;
  }

  async function currentPat(connection: Connection): Promise<string> {
    const { rotator } = deps;
    if (rotator === undefined) return storedToken(connection);
    const fresh = await freshRow(connection);
    if (isRotationDue(fresh, clock.now())) {
      // Failures are the rotator's to report (logged, audited, or the connection marked); the stored token is still
      // valid until its expiry date, so the caller gets it either way.
      const outcome = await rotator.rotateIfDue(fresh);
      if ((outcome.status === 'failed' && outcome.error instanceof UpstreamError) || outcome.status === 'unknown') {
        deps.logger?.warn({ connectionId: fresh.id, outcome: outcome.status }, 'token rotation did not happen; using the current token');
      }
    }
    return storedToken(fresh);
  }

  async function currentToken(connection: Connection): Promise<string> {
    if (connection.kind === 'pat') return currentPat(connection);
    // The row first, then the token: a refresh commits both at once, so a fresh expiry read here is never paired
    // with the token it replaced (an old expiry with a new token only costs a look under the lock).
    const fresh = await freshRow(connection);
    const token = await storedToken(fresh);
    if (!expiring(fresh.tokenExpiresAt)) return token;
    return refreshOnce(fresh, token, 'expiring');
  }

  async function refresh(connection: Connection, staleToken: string, staleError?: unknown): Promise<string> {
    if (connection.kind === 'pat') {
      // Nothing newer unless the token was rotated while the caller held the old one (or is being rotated: wait).
      await deps.rotator?.settle(connection);
      const stored = await storedToken(connection);
      if (stored !== staleToken) return stored;
      throw staleError ?? new UpstreamError('token_invalid', 'GitLab refused the personal access token; create a new one and reconnect.');
    }
    return refreshOnce(connection, staleToken, 'refused');
  }

  return {
    currentToken: (connection) => unopened(connection, () => currentToken(connection)),
    refresh: (connection, staleToken, staleError) => unopened(connection, () => refresh(connection, staleToken, staleError)),
    async withToken(connection, use) {
      const token = await unopened(connection, () => currentToken(connection));
      try {
        return await use(token);
      } catch (error) {
        if (!isTokenRejection(error)) throw error;
        return use(await unopened(connection, () => refresh(connection, token, error)));
      }
    },
  };
}
