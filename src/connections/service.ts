import {
  CLONE_SCOPES,
  auditEntry,
  type AuditStore,
  ConflictError,
  InputError,
  NotAllowedError,
  NotFoundError,
  SealedTokenError,
  UpstreamError,
  capabilitiesFromScopes,
  connectionView,
  hostOf,
  normaliseBaseUrl,
  tokenState,
  type Account,
  type Clock,
  type Connection,
  type ConnectionStore,
  type ConnectionView,
  type CredentialsMode,
  type PolicyOverrides,
  type GitLabClient,
  type GitLabClientFactory,
  type GitLabOAuthClients,
  type GitLabProbe,
  type GitLabTarget,
  type Project,
  type TokenProvider,
  type Vault,
} from '../core/index.ts';
import { bindingForSecret } from '../vault/index.ts';
import { cleanCaPem, cleanLabel, cleanToken } from './input.ts';
import { revokeOAuthTokens, type Revocation } from './revoke.ts';
import { auditedTokens, createConnectionClient, openSecret, REFRESH_TOKEN_PURPOSE, TOKEN_PURPOSE, type TokenUse } from '../tokens/index.ts';

export type ConnectionServiceDeps = {
  store: ConnectionStore;
  vault: Vault;
  gitlab: GitLabClientFactory;
  probe: GitLabProbe;
  clock: Clock;
  newId: () => string;
  allowHttp: boolean;
  /** Hands out tokens (refreshing OAuth ones); every GitLab call of a stored connection goes through it. */
  tokens: TokenProvider;
  /** OAuth applications: token info for checks, revocation on disconnect. */
  oauth: GitLabOAuthClients;
  /** The audit trail: token decryptions with their reason, connections created, checked, disconnected. */
  audit?: AuditStore;
};

/** What disconnecting did at GitLab: nothing to do (a personal access token), or the OAuth tokens' revocation. */
export type DisconnectResult = { revocation: Revocation };

export type ConnectInput = { baseUrl?: unknown; token: unknown; caPem?: unknown; label?: unknown };

export const DEFAULT_BASE_URL = 'https://gitlab.com';

/** What GitLab told us about a token right now. */
type Inspection = {
  scopes: string[];
  expiresAt: string | null;
  account: Account | null;
  instanceVersion: string | null;
};

/** Connecting, checking, listing and disconnecting GitLab accounts; every call is scoped to one user. */
export function createConnectionService(deps: ConnectionServiceDeps) {
  const { store, vault, gitlab, probe, clock } = deps;

  function view(connection: Connection): ConnectionView {
    return connectionView(connection, clock.now());
  }

  /**
   * Asks GitLab what the token is: `GET /personal_access_tokens/self` works with any scope, so it comes
   * first; `/user` and `/metadata` only where the scopes allow (docs/gitlab.md, "Inspecting a token").
   */
  async function inspect(client: GitLabClient): Promise<Inspection> {
    const info = await client.inspectToken();
    if (info === null) throw tokenState({ kind: 'not_personal' }).error;
    const state = tokenState({ kind: 'self', ...info });
    if (state.error !== null) throw state.error;

    const caps = capabilitiesFromScopes(info.scopes);
    let account: Account | null = null;
    let instanceVersion: string | null = null;
    if (caps.readUser) {
      account = await client.currentUser();
      // The version is informative only; an instance that hides it still works.
      instanceVersion = await client.metadata().then(
        (meta) => meta.version,
        () => null,
      );
    }
    return { scopes: info.scopes, expiresAt: info.expiresAt, account, instanceVersion };
  }

  async function connect(userId: string, input: ConnectInput): Promise<ConnectionView> {
    const baseUrl = normaliseBaseUrl(
      input.baseUrl === undefined || input.baseUrl === null ? DEFAULT_BASE_URL : requireString(input.baseUrl, 'baseUrl'),
      { allowHttp: deps.allowHttp },
    );
    const token = cleanToken(input.token);
    const caPem = cleanCaPem(input.caPem);
    const label = cleanLabel(input.label, hostOf(baseUrl));
    const target: GitLabTarget = { baseUrl, caPem };

    let inspection: Inspection;
    try {
      await probe.assertGitLab(target);
      inspection = await withClient(gitlab(target, { token, kind: 'pat' }), inspect);
    } catch (error) {
      throw asConnectInputError(error, baseUrl, caPem !== null);
    }
    const cloneScopes: readonly string[] = CLONE_SCOPES;
    if (!inspection.scopes.some((scope) => cloneScopes.includes(scope))) {
      throw new InputError(
        'insufficient_scope',
        `This token lacks any scope that allows cloning (it has: ${inspection.scopes.join(', ') || 'none'}). Give it read_repository and write_repository, or api.`,
        { field: 'token' },
      );
    }

    const now = clock.now().toISOString();
    const connection: Connection = {
      id: deps.newId(),
      userId,
      provider: 'gitlab',
      kind: 'pat',
      baseUrl,
      host: hostOf(baseUrl),
      label,
      account: inspection.account,
      scopes: inspection.scopes,
      expiresAt: inspection.expiresAt,
      tokenExpiresAt: null,
      rotation: null,
      credentials: null,
      policy: {},
      status: 'active',
      statusReason: null,
      caPem,
      instanceVersion: inspection.instanceVersion,
      checkedAt: now,
      createdAt: now,
    };
    const secret = { id: deps.newId(), ownerId: userId, connectionId: connection.id, purpose: TOKEN_PURPOSE };
    await store.createConnection(connection, [{ ...secret, sealed: vault.seal(token, bindingForSecret(secret)) }]);
    await record({
      ownerId: userId,
      actor: userId,
      action: 'connection.created',
      connectionId: connection.id,
      details: { kind: 'pat', host: connection.host, scopes: connection.scopes, account: connection.account?.username ?? null },
    });
    return view(connection);
  }

  async function load(userId: string, id: string): Promise<Connection> {
    const connection = await store.getConnection(userId, id);
    if (connection === null) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
    return connection;
  }

  /** A client that takes the connection's current token for each call (refreshing OAuth tokens); never holds a plaintext beyond it. */
  function clientFor(connection: Connection, use: TokenUse): GitLabClient {
    return createConnectionClient({ gitlab, tokens: tokensFor(use) }, connection);
  }

  function tokensFor(use: TokenUse) {
    return auditedTokens(deps.tokens, deps.audit, clock, use);
  }

  async function record(entry: Parameters<typeof auditEntry>[1]): Promise<void> {
    await deps.audit?.record(auditEntry(clock.now(), entry));
  }

  /**
   * An OAuth token cannot be inspected through /personal_access_tokens/self (GitLab answers 400): its scopes
   * come from `GET /oauth/token/info` (GitLab docs: api/oauth2.md), and it has no expiry date of its own.
   */
  async function inspectOAuth(connection: Connection, client: GitLabClient, use: TokenUse): Promise<Inspection> {
    const oauthClient = deps.oauth.forBaseUrl(connection.baseUrl);
    if (oauthClient === null) {
      throw new ConflictError(
        'oauth_not_configured',
        `No OAuth application is configured for ${connection.baseUrl} any more; the operator must add it back to FORGELINK_GITLAB_OAUTH_APPS.`,
      );
    }
    const details = await tokensFor(use).withToken(connection, (token) => oauthClient.tokenInfo(token));
    const caps = capabilitiesFromScopes(details.scopes);
    const account = caps.readUser ? await client.currentUser() : connection.account;
    const instanceVersion = caps.readUser ? await client.metadata().then((meta) => meta.version, () => null) : connection.instanceVersion;
    return { scopes: details.scopes, expiresAt: null, account, instanceVersion };
  }

  /** Re-validates against GitLab now and records the outcome as the connection's status. */
  async function check(userId: string, id: string, use: TokenUse = { actor: userId, reason: 'check' }): Promise<ConnectionView> {
    const connection = await load(userId, id);
    const checkedAt = clock.now().toISOString();
    let patch: Partial<Connection>;
    let unopened: SealedTokenError | null = null;
    try {
      const inspection = await withClient(clientFor(connection, use), (client) =>
        connection.kind === 'oauth' ? inspectOAuth(connection, client, use) : inspect(client),
      );
      patch = { ...inspection, status: 'active', statusReason: null, checkedAt };
    } catch (error) {
      const state = tokenState({ kind: 'failed', error, asked: 'token' });
      // A 429 or a failure inside forgelink says nothing about the token: the status stays, and the caller waits (the
      // monitor backs off, the API answers 503) or sees the error.
      if (state.error === null || state.status === 'unchanged') throw error;
      patch = { status: state.status, statusReason: state.error.message, checkedAt };
      // A token that cannot be opened is recorded like any other finding, and the caller is told at once (409).
      if (error instanceof SealedTokenError) unopened = error;
    }
    const updated = await store.updateConnection(userId, id, patch);
    if (updated === null) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
    await record({
      ownerId: userId,
      actor: use.actor,
      action: 'connection.checked',
      connectionId: id,
      reason: use.reason,
      details: { status: updated.status },
    });
    if (updated.status !== connection.status) {
      await record({
        ownerId: userId,
        actor: use.actor,
        action: 'connection.status_changed',
        connectionId: id,
        reason: use.reason,
        details: { from: connection.status, to: updated.status, why: updated.statusReason },
      });
    }
    if (unopened !== null) throw unopened;
    return view(updated);
  }

  async function projects(userId: string, id: string, search?: string): Promise<Project[]> {
    const connection = await load(userId, id);
    const client = clientFor(connection, { actor: userId, reason: 'projects' });
    const found: Project[] = [];
    try {
      for await (const project of client.projects(search === undefined ? {} : { search })) found.push(project);
    } catch (error) {
      if (error instanceof UpstreamError && error.reason === 'insufficient_scope') {
        throw new NotAllowedError(
          'insufficient_scope',
          'This connection\'s token cannot list projects: that needs the read_api or api scope. Name the project by its path when starting a run instead.',
          { cause: error },
        );
      }
      throw error;
    } finally {
      await client.close();
    }
    return found;
  }

  return {
    view,
    connect,
    check,
    projects,
    async list(userId: string): Promise<ConnectionView[]> {
      return (await store.listConnections(userId)).map(view);
    },
    async get(userId: string, id: string): Promise<ConnectionView> {
      return view(await load(userId, id));
    },
    /**
     * The defaults the connection gives its runs (docs/contract.md, "Run policy"): `credentials` (null: the server's)
     * and the policy options it turns off — `false` turns one off, `true` lifts that again; options left out stay.
     * Only `false` is kept: a connection can never turn on what the operator leaves off.
     */
    async configureRuns(userId: string, id: string, input: { credentials?: CredentialsMode | null; policy?: PolicyOverrides }): Promise<ConnectionView> {
      const updated = await store.withConnectionLock(userId, id, async (locked) => {
        const policy: PolicyOverrides = { ...locked.connection.policy };
        for (const [name, value] of Object.entries(input.policy ?? {}) as [keyof PolicyOverrides, boolean | undefined][]) {
          if (value === false) policy[name] = false;
          else if (value === true) delete policy[name];
        }
        return locked.update({ patch: { policy, ...(input.credentials === undefined ? {} : { credentials: input.credentials }) } });
      });
      if (updated === null) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
      return view(updated);
    },
    /**
     * Deletes the connection and its sealed tokens (not a flag: the rows are gone). An OAuth connection's
     * tokens are read and deleted under the connection's lock, so no refresh can slip in between, and then
     * revoked at GitLab, best effort: the result says when that failed.
     */
    async disconnect(userId: string, id: string): Promise<DisconnectResult> {
      const result = await disconnect(userId, id);
      await record({
        ownerId: userId,
        actor: userId,
        action: 'connection.disconnected',
        connectionId: id,
        details: { revocation: result.revocation.status },
      });
      return result;
    },
  };

  async function disconnect(userId: string, id: string): Promise<DisconnectResult> {
    const connection = await load(userId, id);
    if (connection.kind !== 'oauth') {
      if (!(await store.deleteConnection(userId, id))) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
      return { revocation: { status: 'not_applicable' } };
    }
    const held = await store.withConnectionLock(userId, id, async (locked) => {
      const opened: { token: string; hint: 'access_token' | 'refresh_token' }[] = [];
      for (const [purpose, hint] of [[REFRESH_TOKEN_PURPOSE, 'refresh_token'], [TOKEN_PURPOSE, 'access_token']] as const) {
        const secret = await locked.getSecret(purpose);
        if (secret === null) continue;
        try {
          opened.push({ token: openSecret(vault, secret), hint });
        } catch (error) {
          // A token that cannot be opened cannot be revoked either; the connection goes all the same.
          if (!(error instanceof SealedTokenError)) throw error;
        }
      }
      await locked.delete();
      return opened;
    });
    if (held === null) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
    return { revocation: await revokeOAuthTokens(deps.oauth.forBaseUrl(connection.baseUrl), connection, held) };
  }
}

export type ConnectionService = ReturnType<typeof createConnectionService>;

async function withClient<T>(client: GitLabClient, use: (client: GitLabClient) => Promise<T>): Promise<T> {
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InputError('invalid_input', `${field} must be a string.`, { field });
  return value;
}

/**
 * During connect every GitLab refusal is about what the user typed: the instance URL, the token or the
 * CA. Turn it into an InputError naming that field, with words the user can act on.
 */
function asConnectInputError(error: unknown, baseUrl: string, hasCa: boolean): unknown {
  if (!(error instanceof UpstreamError)) return error;
  const host = hostOf(baseUrl);
  const options = (field: string) => ({ field, cause: error });
  switch (error.reason) {
    case 'blocked_address':
    case 'unreachable':
    case 'not_gitlab':
      return new InputError(error.code, error.message, options('baseUrl'));
    case 'certificate':
      return new InputError(
        error.code,
        hasCa
          ? `${error.message} The CA certificate given does not validate ${host}'s certificate.`
          : error.message,
        // Next to the field that fixes it: the CLI names it --ca-file, the dashboard shows it by its CA certificate field.
        options('caPem'),
      );
    case 'token_invalid':
      return new InputError(
        error.code,
        `${host} does not recognise this token. Check that it was copied whole and was created on this instance.`,
        options('token'),
      );
    case 'token_expired': {
      // A 401 carries the client's message for a stored connection (src/gitlab/errors.ts), whose advice (update the
      // connection) does not apply before anything is stored; /personal_access_tokens/self's answer states only the
      // fact and the date (src/core/token-state.ts), which is worth keeping.
      const fact = error.status === 401 ? 'GitLab says this token has expired.' : error.message;
      return new InputError(error.code, `${fact} Create a new token with an expiry date and connect again.`, options('token'));
    }
    case 'token_revoked':
      return new InputError(error.code, 'GitLab says this token was revoked. Create a new token and connect again.', options('token'));
    case 'insufficient_scope':
      return new InputError(error.code, error.message, options('token'));
    default:
      return error;
  }
}
