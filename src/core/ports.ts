/** Interfaces of what the service talks to, implemented in the outer folders (stores, GitLab, the sandbox, the vault, the
 * clock, the notifier). Only `compose.ts` names the concrete implementations. Data types are in `types.ts`, the
 * shapes of services other parts use in `services.ts`. */
import type { Account, ApiKey, AuditEntry, Connection, ConnectionEvent, ConnectionNotification, ConnectionPatch, ConnectionStatus, GitLabIssue, GitLabMergeRequest, InstanceInfo, NewApiKey, NewUser, OAuthState, OAuthTokenDetails, OAuthTokenSet, Project, ProjectDetail, ProtectedBranch, SealedUserSecret, Session, StoredSecret, TokenInfo, User, UserSecret } from './types.ts';
import type { Run, RunLogEntry, RunStatus } from './runs.ts';
import type { OutboundPolicy } from './addresses.ts';
import type { RotatedToken, RotationAnswer, RotationIntent } from './rotation.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SecureContext } from 'node:tls';

export interface Clock {
  now(): Date;
}

/** Where a GitLab instance is and how to trust it. */
export type GitLabTarget = { baseUrl: string; caPem?: string | null };
export type GitLabCredentials = { token: string; kind: 'pat' | 'oauth' };

/** A GitLab REST client bound to one instance and one token. Errors are `UpstreamError`s. */
export interface GitLabClient extends GitLabProjectsApi {
  /** `GET /personal_access_tokens/self`; null when the token is not a personal access token (GitLab answers 400). */
  inspectToken(): Promise<TokenInfo | null>;
  /** `GET /user` (needs read_user, read_api or api). */
  currentUser(): Promise<Account>;
  /** `GET /metadata` (needs read_user or api). */
  metadata(): Promise<InstanceInfo>;
  /** Every project the account has Developer access or more to, across all pages. */
  projects(options?: { search?: string }): AsyncIterable<Project>;
  /**
   * `POST /personal_access_tokens/self/rotate` (GitLab 16.10+, needs api or self_rotate): GitLab revokes this
   * client's token and answers with its successor. Only the rotator (tokens/rotator.ts) calls it, since the
   * answer must be stored before anything else happens.
   */
  rotateSelf(expiresAt: string): Promise<RotatedToken>;
  /** Releases the client's connections; call when done with it. */
  close(): Promise<void>;
}

export type GitLabClientFactory = (target: GitLabTarget, credentials: GitLabCredentials) => GitLabClient;

/** Anonymous probe of an instance, used before a token is involved. */
export interface GitLabProbe {
  /** Resolves when `baseUrl` answers like GitLab; otherwise throws an UpstreamError (not_gitlab, unreachable, certificate, blocked_address). */
  assertGitLab(target: GitLabTarget): Promise<void>;
}

/** A secret sealed for one owner and one record. */
export type SecretBinding = { ownerId: string; recordId: string; purpose: string };

/** AES-256-GCM sealing; `open` throws VaultError on tamper, wrong binding or unknown key. */
export interface Vault {
  seal(plaintext: string, binding: SecretBinding): string;
  open(sealed: string, binding: SecretBinding): string;
  /** The key id a sealed value was sealed with. */
  keyIdOf(sealed: string): string;
  /** The key id new seals use. */
  currentKeyId(): string;
}

export interface UserStore {
  createUser(user: NewUser): Promise<User>;
  findUserByName(name: string): Promise<User | null>;
  /** The owner of the unrevoked API key with this hash. */
  findUserByApiKeyHash(hash: string): Promise<User | null>;
  listUsers(): Promise<User[]>;
  /** The user and their password hash (null when none was set), for the dashboard's sign-in. */
  findPasswordHash(name: string): Promise<{ user: User; passwordHash: string | null } | null>;
  /** Replaces the user's password hash; false when there is no such user. */
  setPasswordHash(userId: string, passwordHash: string): Promise<boolean>;
}

/** API keys, stored as SHA-256 hashes. A user has any number; revoked ones are kept (the audit log names them). */
export interface ApiKeyStore {
  /** Throws ConflictError `key_name_taken` (field `name`) when the user has an unrevoked key of that name. */
  createKey(key: NewApiKey): Promise<void>;
  /** The user's unrevoked keys, oldest first. */
  listKeys(userId: string): Promise<ApiKey[]>;
  /** Revokes the user's key at `at`; false when they have no such unrevoked key. */
  revokeKey(userId: string, id: string, at: string): Promise<boolean>;
  /** The unrevoked key with this hash, and its user. */
  findActiveKey(hash: string): Promise<{ key: ApiKey; user: User } | null>;
  /** Sets the key's last use to `at` when none is recorded or the recorded one is at or before `staleAt`; true when it wrote. */
  recordUse(id: string, at: string, staleAt: string): Promise<boolean>;
}

export interface SessionStore {
  createSession(session: Session): Promise<void>;
  /** The session and its user, or null when there is no such session. */
  getSession(id: string): Promise<{ session: Session; user: User } | null>;
  touchSession(id: string, times: { lastSeenAt: string; expiresAt: string }): Promise<void>;
  deleteSession(id: string): Promise<void>;
  /** Signs a user out everywhere; returns how many sessions ended. */
  deleteUserSessions(userId: string): Promise<number>;
  /** Removes sessions whose expiry is before `now` (ISO time). */
  deleteExpiredSessions(now: string): Promise<number>;
}

export interface ConnectionStore {
  /** Inserts the connection and its sealed secrets in one transaction. */
  createConnection(connection: Connection, secrets: StoredSecret[]): Promise<void>;
  /** The user's connection, or null when it does not exist or belongs to someone else. */
  getConnection(userId: string, id: string): Promise<Connection | null>;
  listConnections(userId: string): Promise<Connection[]>;
  /**
   * Every user's connections (the health monitor's sweep), oldest check first. `checkedBefore` keeps those last
   * checked before that ISO time; `expiringBy` those whose expiry date is on or before that `YYYY-MM-DD`;
   * `statuses` those in one of these statuses.
   */
  listAllConnections(filter?: { checkedBefore?: string; expiringBy?: string; statuses?: readonly ConnectionStatus[] }): Promise<Connection[]>;
  updateConnection(userId: string, id: string, patch: ConnectionPatch): Promise<Connection | null>;
  /** Deletes the connection and every secret of it; false when there was none for this user. */
  deleteConnection(userId: string, id: string): Promise<boolean>;
  getSecret(userId: string, connectionId: string, purpose: string): Promise<StoredSecret | null>;
  /** Every secret, in batches; used by key rotation. */
  allSecrets(): AsyncIterable<StoredSecret>;
  /**
   * Replaces sealed values in one transaction (key rotation, token refresh). With `expected`, a row is
   * replaced only while its sealed value is still that one, so a rotation never overwrites a concurrent refresh.
   */
  replaceSecrets(updates: { id: string; sealed: string; expected?: string }[]): Promise<void>;
  /**
   * Runs `use` holding an exclusive lock on the connection that every process sharing the database respects
   * (PostgreSQL: `SELECT … FOR UPDATE`; SQLite: a write transaction). Reads and writes through `locked` are in
   * the lock's transaction and commit when `use` resolves, before this returns; a rejection rolls them back.
   * Resolves null (without calling `use`) when the user has no such connection. Used to serialize OAuth refreshes.
   */
  withConnectionLock<T>(userId: string, id: string, use: (locked: LockedConnection) => Promise<T>): Promise<T | null>;
  /**
   * Stores GitLab's answer on the rotation intent of attempt `attemptId`, in a transaction of its own that is durable
   * when this resolves (not merely written: SQLite commits it with synchronous=FULL). False when that intent is gone.
   */
  recordRotationAnswer(userId: string, connectionId: string, attemptId: string, answer: RotationAnswer): Promise<boolean>;
  /** Every unfinished token rotation, oldest first (recovery after a restart). */
  listRotationIntents(): Promise<RotationIntent[]>;
}

/** A connection while its lock is held; see `ConnectionStore.withConnectionLock`. */
export interface LockedConnection {
  /** The connection as it was when the lock was taken. */
  readonly connection: Connection;
  getSecret(purpose: string): Promise<StoredSecret | null>;
  /** Replaces the sealed values of existing secrets (by id) and applies `patch` to the connection. */
  update(change: { secrets?: { id: string; sealed: string }[]; patch?: ConnectionPatch }): Promise<Connection>;
  /** Deletes the connection and its secrets (like `deleteConnection`), in the lock's transaction. */
  delete(): Promise<void>;
  /** The connection's unfinished token rotation (its write-ahead intent), if any. */
  rotationIntent(): Promise<RotationIntent | null>;
  /** Writes the intent of a rotation that starts, or removes it (null) once finished or known not to have happened. */
  setRotationIntent(intent: RotationIntent | null): Promise<void>;
}

export interface UserSecretStore {
  /** The user's secrets, by name. */
  listSecrets(userId: string): Promise<UserSecret[]>;
  /** The user's secrets of these names that exist, sealed values included. */
  getSecrets(userId: string, names: readonly string[]): Promise<SealedUserSecret[]>;
  /**
   * Creates the secret, or replaces the value (and the hosts, when given) of the user's secret of that name; the
   * row keeps its id and creation time. `seal` receives the row's id, which the sealed value is bound to.
   */
  putSecret(input: {
    userId: string;
    name: string;
    hosts: string[] | null;
    seal: (id: string) => string;
    newId: () => string;
    now: string;
  }): Promise<{ secret: UserSecret; created: boolean }>;
  /** False when the user has no secret of that name. */
  deleteSecret(userId: string, name: string): Promise<boolean>;
  markUsed(userId: string, ids: readonly string[], at: string): Promise<void>;
  /** Every user's secrets, in batches (key rotation, the master-key check at start). */
  allSealed(): AsyncIterable<SealedUserSecret>;
  /** As `ConnectionStore.replaceSecrets`, for user secrets. */
  replaceSealed(updates: { id: string; sealed: string; expected?: string }[]): Promise<void>;
}

export interface OAuthStateStore {
  saveState(state: OAuthState): Promise<void>;
  /**
   * Marks the state with this hash used at `usedAt` and returns it as stored before; `firstUse` is true for
   * exactly one caller however many race. Null when no state has this hash.
   */
  consumeState(stateHash: string, usedAt: string): Promise<{ state: OAuthState; firstUse: boolean } | null>;
  /** Removes states created before `before` (ISO time); returns how many. */
  deleteStatesBefore(before: string): Promise<number>;
}

/** What runs need from GitLab beyond `GitLabClient`. Errors are `UpstreamError`s (`not_found` for a missing object). */
export interface GitLabProjectsApi {
  /** `GET /projects/:id` by numeric id or full path; falls back to the id when a proxy decodes `%2F`. */
  getProject(idOrPath: string | number): Promise<ProjectDetail>;
  /** `GET /projects/:id/protected_branches`, every page. */
  protectedBranches(projectId: number): Promise<ProtectedBranch[]>;
  /** `GET /projects/:id/repository/branches/:branch`; null when it does not exist. */
  branchExists(projectId: number, branch: string): Promise<boolean>;
  /** Merge requests by `authorId` created after `createdAfter` (ISO time), every page. */
  mergeRequests(projectId: number, filter: { authorId: number; createdAfter: string }): Promise<GitLabMergeRequest[]>;
  /** Issues by `authorId` created after `createdAfter` (ISO time), every page. */
  issues(projectId: number, filter: { authorId: number; createdAfter: string }): Promise<GitLabIssue[]>;
}

export interface RunStore {
  createRun(run: Run): Promise<void>;
  /** The user's run, or null when it does not exist or belongs to someone else. */
  getRun(userId: string, id: string): Promise<Run | null>;
  /** Newest first. */
  listRuns(userId: string, options?: { limit?: number }): Promise<Run[]>;
  /** Internal: the run by id whoever owns it (workers, recovery). */
  getRunById(id: string): Promise<Run | null>;
  updateRun(id: string, patch: Partial<Omit<Run, 'id' | 'userId' | 'createdAt'>>): Promise<Run>;
  listRunsByStatus(statuses: readonly RunStatus[]): Promise<Run[]>;
  /** How many runs there are in each status (the runs-by-status metric); statuses without runs are left out. */
  countRunsByStatus(): Promise<Partial<Record<RunStatus, number>>>;
  appendLog(runId: string, entries: Omit<RunLogEntry, 'seq'>[]): Promise<void>;
  /** Entries with seq > afterSeq, oldest first. */
  readLog(runId: string, afterSeq?: number): Promise<RunLogEntry[]>;
  /**
   * Takes a queued run for `worker`: `queued` → `preparing` with `worker` and `startedAt` set, in one conditional
   * write, so of any number of workers (and a cancel) racing for the run exactly one succeeds. Null when the run
   * is no longer queued (canceled, or taken by another worker).
   */
  claimRun(id: string, worker: string, at: string): Promise<Run | null>;
  /** `updateRun` while the run is still `worker`'s and not finished; null otherwise (it was ended by someone else). */
  updateOwnedRun(id: string, worker: string, patch: Partial<Omit<Run, 'id' | 'userId' | 'createdAt'>>): Promise<Run | null>;
  /** `updateRun` while the run is still queued (cancel before start); null once a worker took it or it ended. */
  updateQueuedRun(id: string, patch: Partial<Omit<Run, 'id' | 'userId' | 'createdAt'>>): Promise<Run | null>;
  /** The unfinished runs of a worker. */
  listWorkerRuns(worker: string): Promise<Run[]>;
  /** Asks the run's worker to stop it: remembered on the run, so a worker that missed the signal still sees it. */
  requestCancel(id: string, at: string): Promise<void>;
  /** Ids of the worker's unfinished runs whose cancel was requested. */
  listCancelRequests(worker: string): Promise<string[]>;
}

/** A process that executes runs, as the workers table records it (docs/architecture.md, "Processes"). */
export type WorkerRecord = {
  id: string;
  host: string;
  pid: number;
  /** How many runs it executes at once (FORGELINK_WORKER_CONCURRENCY). */
  capacity: number;
  /** How many it executes now. */
  running: number;
  /** `draining` after SIGTERM: it takes no new runs. */
  state: 'running' | 'draining';
  startedAt: string;
  lastHeartbeatAt: string;
};

/** The workers table: every process executing runs writes its heartbeat here; any process finds the lost ones. */
export interface WorkerStore {
  /** Adds the worker, or replaces the row of the same id (a restarted worker). */
  register(worker: WorkerRecord): Promise<void>;
  /** Writes a heartbeat; false when the row is gone (another process declared this worker lost). */
  heartbeat(id: string, beat: { running: number; state: WorkerRecord['state']; at: string }): Promise<boolean>;
  remove(id: string): Promise<void>;
  /** Every registered worker, by id. */
  list(): Promise<WorkerRecord[]>;
  /**
   * Deletes the workers whose last heartbeat is before `staleBefore` and returns them: each lost worker is
   * returned to exactly one caller, however many processes look at once.
   */
  claimLost(staleBefore: string): Promise<WorkerRecord[]>;
}

/** A queued run as the queue holds it: who started it (the per-user limit) is all it needs besides the id. */
export type QueuedRun = { runId: string; userId: string };
/** A run a worker took from the queue; `ticket` is the queue's own handle, given back to `settle`. */
export type TakenRun = QueuedRun & { ticket: string };

/**
 * The run queue (docs/architecture.md, "The queue"): PostgreSQL (pg-boss) shared by every process, or an
 * in-process queue with SQLite. Oldest first, and at most `FORGELINK_RUNS_PER_USER` runs of one user taken and
 * not yet settled at once, across every worker.
 */
export interface RunQueue {
  readonly kind: 'postgres' | 'local';
  enqueue(run: QueuedRun): Promise<void>;
  /** Up to `max` runs, oldest first, skipping users at their limit. Each must be `settle`d once its run ended (or was not claimed). */
  take(max: number): Promise<TakenRun[]>;
  settle(taken: TakenRun): Promise<void>;
  /** Puts a taken run back, for another worker (a worker that started draining before it claimed the run). */
  putBack(taken: TakenRun): Promise<void>;
  /** Drops a queued run (canceled before it started). */
  remove(runId: string): Promise<void>;
  /** Ends the queue's hold on runs a lost worker had taken, so they stop counting against their user's limit. */
  abandon(runIds: readonly string[]): Promise<void>;
  /** How many runs wait (for metrics). */
  depth(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Messages between processes about runs (PostgreSQL LISTEN/NOTIFY; in-process with SQLite): a run was queued
 * (wake the workers) or its cancel was requested (the worker executing it stops it). Hints only: workers also poll.
 */
export interface RunSignals {
  queued(): Promise<void>;
  cancel(runId: string): Promise<void>;
  /** Calls the handlers for every message from any process, this one included, until the returned function is called. */
  subscribe(handlers: { queued(): void; cancel(runId: string): void }): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** One isolated sandbox for one run: a workspace, a private egress proxy, and any number of commands. */
export type SandboxOptions = {
  runId: string;
  /** Host directory mounted read-write at /workspace; created by the caller, removed by the caller. */
  workspaceDir: string;
  /** Origins the proxy lets through: `host:port`, or `*.suffix:port` for subdomains. */
  allowlist: readonly string[];
  /** The operator's outbound-address policy, applied to every resolved address. */
  outboundPolicy: OutboundPolicy;
  /** Files made visible read-only inside the sandbox, by absolute path (for example a CA bundle). */
  files?: Readonly<Record<string, string>>;
  /**
   * The root filesystem: an unpacked run image (a directory the image cache prepared, shared read-only by every
   * run of that image), or absent for the host's own /usr.
   */
  rootfs?: string;
  /** Per-run caps; memoryBytes covers every process of the run together, diskBytes the workspace and home together. */
  limits?: {
    processes?: number;
    openFiles?: number;
    fileSizeBytes?: number;
    memoryBytes?: number;
    diskBytes?: number;
    /** CPU time in thousandths of a CPU (1500: one and a half); absent or null for no cap. */
    cpuMillicores?: number | null;
  };
  /**
   * Answers `GET http://forgelink.internal/token` sent through this sandbox's proxy (and nowhere else) with the
   * connection's current token, so git can get a refreshed OAuth token during a long run.
   */
  internalToken?: () => Promise<string>;
  /**
   * Host directories bound at `dest` for every command, read-only (a repository cache's mirror, which the
   * workspace borrows objects from); a command names those it may write in `SandboxExec.writable`.
   */
  mounts?: readonly { source: string; dest: string }[];
  /**
   * The run's credential broker (docs/security.md, "Credential broker"): the proxy hands it every request to the
   * origins it names instead of tunnelling them, TLS terminated with the run's own CA.
   */
  broker?: SandboxBroker;
};

/** One request to a brokered origin, as the egress proxy hands it over: the allowlist and address policy already passed. */
export type BrokeredTarget = {
  /** `host:port`, as on the allowlist. */
  origin: string;
  /** Whether the sandbox spoke TLS (a CONNECT tunnel the proxy terminated) or plain http (an absolute-form request). */
  tls: boolean;
  /** The address the proxy checked for the origin's host; the upstream connection goes there and nowhere else. */
  address: string;
  /**
   * Opens a TCP connection to `address` and the origin's port the way the proxy itself goes out (directly, or
   * through the operator's upstream proxy); the broker puts TLS on top. Without it the broker connects directly.
   */
  connect?: () => Promise<import('node:stream').Duplex>;
};

/** The credential broker as the sandbox's egress proxy uses it. */
export interface SandboxBroker {
  /** Whether requests to `origin` (`host:port`) are brokered rather than tunnelled. */
  brokers(origin: string): boolean;
  /** The TLS context the proxy presents to the sandbox for `host`: a certificate the run's CA signed. */
  tlsContext(host: string): Promise<SecureContext>;
  /** Answers one request: credentials swapped, the run's policy applied, forwarded to the real origin. */
  handle(req: IncomingMessage, res: ServerResponse, target: BrokeredTarget): Promise<void>;
  /** Closes the upstream connections; called when the proxy closes. */
  close(): Promise<void>;
}

export type SandboxExec = {
  command: readonly string[];
  /** The complete environment; nothing is inherited. The driver adds its proxy variables. */
  env: Readonly<Record<string, string>>;
  /** Inside the sandbox; default /workspace. */
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** `dest`s of the session's `mounts` this command alone may write (forgelink's own fetch into a mirror, never the agent). */
  writable?: readonly string[];
  /**
   * Run without the bridge to the run's proxy: the command reaches no network at all and starts sooner (forgelink's
   * own local steps, such as making the workspace from a mirror; never the agent).
   */
  offline?: boolean;
  /** What the command reads on its standard input, which closes when the stream ends; without it, nothing (`/dev/null`). */
  input?: import('node:stream').Readable;
};

export type SandboxExit = {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  canceled: boolean;
  /** Set when the command failed because the run hit a cap: a process was killed for memory, or the command was stopped for disk use. */
  limit?: 'memory' | 'disk';
};

export interface SandboxSession {
  exec(options: SandboxExec): Promise<SandboxExit>;
  /** Lines for the run's log about how the session's limits are enforced (a fallback in use, say). */
  readonly notices?: readonly string[];
  egress(): { allowed: string[]; refused: string[] };
  /** Kills whatever still runs, stops the proxy, removes the sandbox's own files (not the workspace). */
  destroy(): Promise<void>;
}

export interface SandboxDriver {
  create(options: SandboxOptions): Promise<SandboxSession>;
}

/* OAuth with GitLab: the client of one instance's application, and the flow built on it. */

/** The callback's parameters once checked, or the authorization error GitLab sent back (RFC 6749 §4.1.2.1). */
export type CallbackResult =
  | { ok: true; parameters: URLSearchParams }
  | { ok: false; error: string; description: string | null };

/** OAuth 2.0 with one GitLab instance's application. Failures of GitLab are UpstreamErrors. */
export interface GitLabOAuthClient {
  readonly baseUrl: string;
  /** The instance's private CA (PEM), if the operator configured one; OAuth connections to it keep a copy. */
  readonly caPem: string | null;
  /** `<base>/oauth/authorize` with PKCE S256, `state` and the configured scopes (docs/gitlab.md, "OAuth 2.0"). */
  authorizeUrl(input: { state: string; codeChallenge: string }): string;
  /** Checks the callback's parameters against the `state` we issued (oauth4webapi `validateAuthResponse`). */
  validateCallback(query: URLSearchParams, expectedState: string): CallbackResult;
  /** `POST /oauth/token` with `grant_type=authorization_code` and the PKCE verifier. */
  exchangeCode(parameters: URLSearchParams, codeVerifier: string): Promise<OAuthTokenSet>;
  /**
   * `POST /oauth/token` with `grant_type=refresh_token`. GitLab invalidates the old pair on success, so the
   * caller must persist the new one before anything uses it. A refused refresh token is `token_revoked`.
   */
  refresh(refreshToken: string): Promise<OAuthTokenSet>;
  /** `POST /oauth/revoke` (RFC 7009). */
  revoke(token: string, hint: 'access_token' | 'refresh_token'): Promise<void>;
  /** `GET /oauth/token/info` with the access token. */
  tokenInfo(accessToken: string): Promise<OAuthTokenDetails>;
  /** Releases the client's connections. */
  close(): Promise<void>;
}

/** The OAuth clients of the instances the operator configured an application for. */
export interface GitLabOAuthClients {
  /** Base URLs, normalised. */
  instances(): string[];
  /** The client for a normalised base URL, or null when no application is configured for it. */
  forBaseUrl(baseUrl: string): GitLabOAuthClient | null;
  close(): Promise<void>;
}

export interface AuditStore {
  record(entry: AuditEntry): Promise<void>;
  /** Newest first; `ownerId` null means every user's (admins). */
  list(filter: { ownerId: string | null; connectionId?: string; limit?: number }): Promise<AuditEntry[]>;
}

/** Status transitions, and which notifications about connections were sent (so a restart does not send them again). */
export interface ConnectionEventStore {
  /** The connection's transitions, newest first; empty for another user's connection. */
  list(ownerId: string, connectionId: string, options?: { limit?: number }): Promise<ConnectionEvent[]>;
  /** Transitions at or after `since` (ISO time) not yet claimed for notification, oldest first. */
  unnotified(since: string, options?: { limit?: number }): Promise<ConnectionEvent[]>;
  /** Marks the transition notified at `at`; true for exactly one caller however many race. */
  claimNotification(eventId: string, at: string): Promise<boolean>;
  /** Records that the notice `key` about a connection was sent; true the first time only, across every process. */
  claimNotice(connectionId: string, key: string, at: string): Promise<boolean>;
}

/**
 * Named leases shared by every process on one database: at most one holder at a time, until `expiresAt`, so a
 * holder that died hands over once its lease runs out.
 */
export interface LeaseStore {
  /** Takes `name` for `holder` until `expiresAt` when it is free, expired at `now`, or already `holder`'s (a renewal). */
  acquire(name: string, holder: string, times: { now: string; expiresAt: string }): Promise<boolean>;
  /** Gives the lease up if `holder` still holds it. */
  release(name: string, holder: string): Promise<void>;
}

/** Delivers notifications in the background: `notify` returns at once and never throws. */
export interface Notifier {
  notify(notification: ConnectionNotification): void;
  /** Resolves when every delivery begun so far has succeeded or given up (tests, shutdown). */
  idle(): Promise<void>;
  close(): Promise<void>;
}
