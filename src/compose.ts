/**
 * The composition root: the one place that names concrete implementations and wires them together. Everything else
 * receives its dependencies as arguments. `main.ts` (the server and the admin commands) and the test harness build
 * forgelink through `createForgelink`; a test changes a part by passing it in `ForgelinkOverrides`.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { DestinationStream, Logger } from 'pino';
import { createApiKeyService, type ApiKeyService } from './api-keys/index.ts';
import type { Config } from './config/index.ts';
import {
  createConnectionEvents,
  createConnectionService,
  createOAuthFlow,
  type ConnectionService,
} from './connections/index.ts';
import { ConflictError, InputError, newId, NotAllowedError, type Clock, type Run, type RunQueue, type RunSignals, type GitLabOAuthClients, type GitLabOAuthFlow, type Notifier, type TokenProvider, type Vault } from './core/index.ts';
import { createDoctorService, type DoctorService } from './doctor/index.ts';
import { createGitLabOAuthClients, createGitLabProbe, gitlabClientFactory } from './gitlab/index.ts';
import { createMetrics, type Metrics } from './metrics/index.ts';
import { createHealthMonitor, type HealthMonitor } from './monitor/index.ts';
import { createWebhookNotifier } from './notify/index.ts';
import { createRunService, createRunWorker, createWorkerReaper, repoCacheDir, type RunService, type RunWorker, type WorkerReaper } from './runs/index.ts';
import { createLocalRunQueue, createLocalRunSignals, createPgRunQueue, createPgRunSignals, lockDataDir, type ProcessLock } from './queue/index.ts';
import { createSecretService, type SecretService } from './secrets/index.ts';
import { createBubblewrapDriver } from './sandbox/index.ts';
import { createImageStore } from './images/index.ts';
import { createApp, createLogger, createSetupLinks, createWorkerApp, prettyLogStream, SETUP_LINK_LIFETIME_MS, type App, type ReadinessCheck } from './server/index.ts';
import { openStorage, secureDataDir, type Storage } from './storage/index.ts';
import { auditedTokens, createRotationService, createRotator, createTokenProvider, type RotationService, type Rotator, type RotatorDeps } from './tokens/index.ts';
import { createFileBackedVault, createVault, loadKeyringForDatabase, type Keyring, type MasterKeySettings } from './vault/index.ts';

export const systemClock: Clock = { now: () => new Date() };

/** Parts a caller supplies instead of the ones the configuration would build (tests, mostly). */
export type ForgelinkOverrides = {
  clock?: Clock;
  /** Already open; `stop()` closes it. */
  storage?: Storage;
  /** Where log lines go, at `config.logLevel` (default: stdout), as JSON unless `config.logFormat` is pretty. */
  logStream?: DestinationStream;
  /** The vault's keys, instead of loading the master key from `config.masterKey` or the data directory. */
  keyring?: Keyring;
  /** How GitLab clients wait between retries (default: a real timer). */
  gitlabSleep?: (ms: number) => Promise<void>;
  /** Time limits of a token rotation. */
  rotation?: Partial<Pick<RotatorDeps, 'requestMs' | 'settleMs' | 'waitMs'>>;
  /** How long before expiry an OAuth access token is refreshed. */
  tokenRefreshMarginMs?: number;
  /** Reported by the API (default: package.json's). */
  version?: string;
  /**
   * `forgelink serve --new-master-key`: start even though the master key cannot open the secrets the database
   * holds (by default that stops the start, see `loadKeyringForDatabase`).
   */
  newMasterKey?: boolean;
  /**
   * What this process is (docs/architecture.md, "Processes"): `all` serves the API and executes runs (`forgelink
   * serve`), `api` only serves (`serve --no-runs`), `worker` only executes runs (`forgelink worker`). Default `all`.
   */
  role?: ForgelinkRole;
};

export type ForgelinkRole = 'all' | 'api' | 'worker';

/**
 * What this process does once started. `forgelink serve` listens; a process without `listen` still recovers and
 * executes runs, recovers rotations and takes part in health monitoring (the runs-only worker of a later issue).
 */
export type ForgelinkStartOptions = { listen: boolean };

/** How `stop` ends running runs: at once (the default), or after letting them finish for up to `drainMs` (SIGTERM). */
export type ForgelinkStopOptions = { drainMs?: number };

/** Where the HTTP server listens, once started with `listen`. */
export type Listening = { address: string; port: number; url: string };

export type Forgelink = {
  config: Config;
  clock: Clock;
  logger: Logger;
  storage: Storage;
  vault: Vault;
  oauth: GitLabOAuthClients;
  rotator: Rotator;
  tokens: TokenProvider;
  connections: ConnectionService;
  /** Connect Account; null until the operator configures an OAuth application. */
  oauthFlow: GitLabOAuthFlow | null;
  runs: RunService;
  /** This process's run worker; null when it executes no runs (role `api`). */
  worker: RunWorker | null;
  /** Finds lost workers and ends their runs (PostgreSQL; null with SQLite, whose one process has no one to lose). */
  reaper: WorkerReaper | null;
  queue: RunQueue;
  signals: RunSignals;
  role: ForgelinkRole;
  /** Users' named secrets. */
  secrets: SecretService;
  doctor: DoctorService;
  notifier: Notifier | null;
  /** Null when the operator turned it off (FORGELINK_MONITOR=off). */
  monitor: HealthMonitor | null;
  rotation: RotationService;
  apiKeys: ApiKeyService;
  app: App;
  /** The figures `/metrics` serves; `metrics.setSources` lets the shared queue report its depth and live workers. */
  metrics: Metrics;
  /** What `/readyz` checks (the database from the start); a part started later adds its own. */
  readiness: { checks(): readonly ReadinessCheck[]; add(check: ReadinessCheck): void };
  /** Recovers runs and rotations a restart interrupted, starts the monitor and, with `listen`, the HTTP server. */
  start(options: ForgelinkStartOptions): Promise<Listening | null>;
  /** Stops everything `createForgelink` and `start` began, in order; later calls return the first call's promise. */
  stop(options?: ForgelinkStopOptions): Promise<void>;
};

export function masterKeySettings(config: Config): MasterKeySettings {
  return { dataDir: config.dataDir, ...config.masterKey };
}

/** The configured database (SQLite in the data directory, or PostgreSQL); the caller closes it. */
export function openConfiguredStorage(config: Config, clock: Clock = systemClock): Promise<Storage> {
  return openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl ?? undefined, clock });
}

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function openVault(config: Config, logger: Logger, storage: Storage, overrides: ForgelinkOverrides): Promise<Vault> {
  if (overrides.keyring !== undefined) return createVault({ keyring: overrides.keyring });
  const loaded = await loadKeyringForDatabase(masterKeySettings(config), storage, { newKeyAllowed: overrides.newMasterKey === true });
  for (const notice of loaded.notices) logger.warn({ keyring: loaded.source.kind }, notice);
  // A keyring from a file can gain versions through `admin rotate-key` while the server runs.
  return loaded.source.kind === 'env'
    ? createVault({ keyring: loaded.keyring })
    : createFileBackedVault({ keyring: loaded.keyring, path: loaded.source.path });
}

/** JSON lines, or readable ones when asked (FORGELINK_LOG_FORMAT=pretty) or, unless asked otherwise, on a terminal. */
async function logDestination(config: Config, stream: DestinationStream | undefined): Promise<DestinationStream | undefined> {
  const format = config.logFormat ?? (stream === undefined && process.stdout.isTTY ? 'pretty' : 'json');
  return format === 'pretty' ? prettyLogStream(stream ?? 1) : stream;
}

/** A server's handler as @hono/node-server calls it: the request, then its bindings (the Node request and response). */
type Fetch = (request: Request, ...rest: any[]) => Response | Promise<Response>;

/**
 * Fails as starting would when `listen` cannot be listened on (in use, not permitted, not an address of this machine),
 * by listening for a moment: `forgelink serve` asks before it makes anything (a new master key) in the data directory.
 * Port 0 is always free. The address may still be taken between this check and the start, which then fails as before.
 */
export async function checkListenAddress(listen: Config['listen']): Promise<void> {
  if (listen.port === 0) return;
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error) => reject(listenError(error, listen)));
    probe.listen({ host: listen.host, port: listen.port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/** Why the server cannot listen, in words that name the setting to change; other errors pass unchanged. */
function listenError(error: Error & { code?: string }, listen: Config['listen']): Error {
  const address = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
  const fix = 'set FORGELINK_LISTEN to another host:port';
  const options = { field: 'FORGELINK_LISTEN', cause: error };
  if (error.code === 'EADDRINUSE') return new ConflictError('listen_address_in_use', `${address} is already in use: ${fix}`, options);
  if (error.code === 'EACCES') {
    return new NotAllowedError('listen_not_permitted', `this process may not listen on ${address} (ports below 1024 need privileges): ${fix}`, options);
  }
  if (error.code === 'EADDRNOTAVAIL') return new InputError('listen_address_unavailable', `${listen.host} is not an address of this machine: ${fix}`, options);
  return error;
}

/** Builds the whole service from its configuration. Nothing runs in the background until `start`. */
export async function createForgelink(config: Config, overrides: ForgelinkOverrides = {}): Promise<Forgelink> {
  const clock = overrides.clock ?? systemClock;
  const logger = createLogger(config.logLevel, await logDestination(config, overrides.logStream));
  let storage = overrides.storage;
  try {
    const secured = await secureDataDir(config.dataDir);
    if (secured.changed.length > 0) logger.warn({ changed: secured.changed }, 'made the data directory private: other users could read these');
    if (secured.failed.length > 0) logger.error({ failed: secured.failed }, 'could not make these data directory entries private');
    storage ??= await openConfiguredStorage(config, clock);
    const vault = await openVault(config, logger, storage, overrides);
    const role = overrides.role ?? 'all';
    if (role !== 'all' && storage.kind === 'sqlite') {
      throw new InputError(
        'needs_postgres',
        `${role === 'worker' ? 'forgelink worker' : 'forgelink serve --no-runs'} needs PostgreSQL (DATABASE_URL): with SQLite, forgelink is one process and \`forgelink serve\` executes the runs itself.`,
        { field: 'DATABASE_URL' },
      );
    }
    const workerId = role === 'api' ? null : await workerIdentity(config.dataDir);
    return await wire({ config, clock, logger, vault, storage, overrides, role, workerId });
  } catch (error) {
    await storage?.close();
    throw error;
  }
}

type Basics = {
  config: Config;
  clock: Clock;
  logger: Logger;
  vault: Vault;
  storage: Storage;
  overrides: ForgelinkOverrides;
  role: ForgelinkRole;
  workerId: string | null;
};

/**
 * The id this data directory's worker has, kept in `<data dir>/worker-id` so a restarted worker knows its earlier
 * runs (and ends them at once) instead of waiting for them to be found lost.
 */
async function workerIdentity(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'worker-id');
  const existing = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (/^wrk_[A-Za-z0-9_.-]{1,80}$/.test(existing)) return existing;
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 40) || 'host';
  const id = `wrk_${host}_${randomBytes(4).toString('hex')}`;
  await writeFile(file, `${id}\n`, { mode: 0o600 });
  return id;
}

async function wire({ config, clock, logger, vault, storage, overrides, role, workerId }: Basics): Promise<Forgelink> {
  const policy = { allow: config.outboundAllow, upstreamProxy: config.upstreamProxy };
  const metrics = createMetrics({
    queueDepth: async () => (await storage.runs.countRunsByStatus()).queued ?? 0,
    runsByStatus: () => storage.runs.countRunsByStatus(),
    // Until the run queue is wired below (metrics.setSources): this process alone.
    liveWorkers: async () => 1,
  });
  const readinessChecks: ReadinessCheck[] = [{ name: 'database', check: () => storage.ping() }];
  const readiness = {
    checks: () => readinessChecks,
    add: (check: ReadinessCheck) => {
      readinessChecks.push(check);
    },
  };
  const transport = {
    logger,
    clock,
    onCall: (status: number | 'network_error') => metrics.gitlabCall(status),
    ...(overrides.gitlabSleep === undefined ? {} : { sleep: overrides.gitlabSleep }),
  };
  const gitlab = gitlabClientFactory(policy, transport);
  const oauth = createGitLabOAuthClients({
    apps: config.gitlabOAuthApps,
    publicUrl: config.publicUrl,
    scopes: config.gitlabOAuthScopes,
    policy,
    clock,
    logger,
  });
  const rotator = createRotator({
    store: storage.connections,
    vault,
    // One retry at most and short rate-limit waits: a rotation request must end well within ROTATION_SETTLE_MS.
    gitlab: gitlabClientFactory(policy, { ...transport, maxRetries: 1, maxRetryAfterSeconds: 10 }),
    clock,
    audit: storage.audit,
    logger,
    // Direct runs past their preparation hold the token in their sandbox (GITLAB_TOKEN): a rotation would revoke it
    // under them. Brokered runs never hold it (their proxy asks for the current token at each request), and a run
    // still preparing — the one asking, once a worker has claimed it — has not handed it out yet.
    inUse: async (connection) =>
      (await storage.runs.listRunsByStatus(['cloning', 'running', 'collecting'])).some((run) => run.connectionId === connection.id && run.credentials === 'direct'),
    ...overrides.rotation,
  });
  const tokens = createTokenProvider({
    store: storage.connections,
    vault,
    oauth,
    clock,
    logger,
    rotator,
    onRefresh: (outcome) => metrics.tokenRefresh(outcome),
    ...(overrides.tokenRefreshMarginMs === undefined ? {} : { refreshMarginMs: overrides.tokenRefreshMarginMs }),
  });
  const connections = createConnectionService({
    audit: storage.audit,
    store: storage.connections,
    vault,
    gitlab,
    probe: createGitLabProbe(policy, transport),
    clock,
    newId: () => newId('con'),
    allowHttp: config.allowHttp,
    tokens,
    oauth,
  });
  const oauthFlow =
    config.gitlabOAuthApps.length === 0
      ? null
      : createOAuthFlow({
          audit: storage.audit,
          states: storage.oauthStates,
          store: storage.connections,
          vault,
          oauth,
          gitlab,
          clock,
          newId,
          allowHttp: config.allowHttp,
          logger,
        });
  const secrets = createSecretService({ store: storage.userSecrets, vault, clock, audit: storage.audit, newId: () => newId('sct') });
  const { runsPerUser, lostAfterMs } = config.workers;
  const queueError = (error: unknown) => logger.error({ err: error }, 'run queue trouble');
  const queue = storage.pool === null ? createLocalRunQueue({ runsPerUser }) : createPgRunQueue({ pool: storage.pool, runsPerUser, onError: queueError });
  const signals = storage.pool === null ? createLocalRunSignals() : createPgRunSignals({ pool: storage.pool, onError: queueError });
  // The shared queue reports its depth and the workers that heartbeat (GET /metrics), and answers for /readyz.
  metrics.setSources({
    queueDepth: () => queue.depth(),
    liveWorkers: async () => {
      const now = clock.now().getTime();
      return (await storage.workers.list()).filter((entry) => now - Date.parse(entry.lastHeartbeatAt) < lostAfterMs).length;
    },
  });
  readiness.add({ name: 'queue', check: async () => void (await queue.depth()) });
  const sandboxDir = path.join(config.dataDir, 'sandboxes');
  const pipeline = {
    secrets,
    audit: storage.audit,
    runs: storage.runs,
    connections: storage.connections,
    tokens,
    gitlab,
    images: createImageStore({ dir: config.imageDir }),
    sandbox: createBubblewrapDriver({
      stateDir: sandboxDir,
      extraReadOnlyPaths: config.runs.sandboxMounts,
      cpuWeight: config.runs.cpuWeight,
      nice: config.runs.nice,
      logger,
    }),
    clock,
    settings: {
      ...config.runs,
      agents: config.agents,
      policy: config.policy,
      workDir: path.join(config.dataDir, 'runs'),
      repoCache: { ...config.runs.repoCache, dir: repoCacheDir(config.dataDir) },
    },
    outboundPolicy: policy,
    onError: (error: unknown, runId: string) => logger.error({ err: error, runId }, 'run failed inside forgelink'),
    onFinished: (run: Run, seconds: number) => metrics.runFinished(run.status, seconds),
  };
  // Six looks per FORGELINK_WORKER_LOST_AFTER: a worker is declared lost after five missed heartbeats, and found at
  // most one look later, so a dead worker's runs end within FORGELINK_WORKER_LOST_AFTER of its death.
  const beatMs = Math.max(200, Math.floor(lostAfterMs / 6));
  const workerEvents = {
    trouble: (error: unknown, what: string) => logger.error({ err: error }, `worker: ${what} failed`),
    reaped: (lost: { id: string; host: string }, runIds: string[]) =>
      logger.warn({ worker: lost.id, host: lost.host, runs: runIds }, `worker ${lost.id} on ${lost.host} was lost; its ${runIds.length} run(s) ended worker_lost`),
  };
  const worker =
    workerId === null
      ? null
      : createRunWorker({
          ...pipeline,
          queue,
          signals,
          workers: storage.workers,
          id: workerId,
          host: hostname(),
          capacity: config.runs.concurrency,
          heartbeatMs: beatMs,
          pollMs: storage.pool === null ? 1000 : 2000,
          sandboxDir,
          events: workerEvents,
        });
  const reaper =
    storage.pool === null
      ? null
      : createWorkerReaper({ runs: storage.runs, workers: storage.workers, queue, clock, lostAfterMs: lostAfterMs - beatMs, intervalMs: beatMs, events: workerEvents });
  const runs = createRunService({ ...pipeline, connections: storage.connections, newId: () => newId('run'), queue, signals, worker: () => worker });
  const doctor = createDoctorService({
    deps: { policy, gitlab, clock, runExtraHosts: config.runs.extraHosts },
    store: storage.connections,
    tokenFor: (connection) =>
      auditedTokens(tokens, storage.audit, clock, { actor: connection.userId, reason: 'doctor' }).currentToken(connection),
  });
  const notifier =
    config.notifyWebhook === null ? null : createWebhookNotifier({ url: config.notifyWebhook.url, secret: config.notifyWebhook.secret, policy, logger });
  // One per process; only the holder of the monitor lease checks, so several processes on one database share the work.
  const monitor = config.monitor.enabled
    ? createHealthMonitor({
        store: storage.connections,
        check: (userId, id) => connections.check(userId, id, { actor: 'system', reason: 'monitor' }),
        events: storage.connectionEvents,
        leases: storage.leases,
        users: storage.users,
        notifier,
        clock,
        logger,
        intervalMs: config.monitor.intervalMs,
        jitterMs: config.monitor.jitterMs,
      })
    : null;
  const rotation = createRotationService({ store: storage.connections, rotator, clock });
  const apiKeys = createApiKeyService({ store: storage.apiKeys, audit: storage.audit, clock, logger });
  const setupLinks = createSetupLinks({ clock });
  const version = overrides.version ?? (await packageVersion());
  const app = createApp({
    users: storage.users,
    apiKeys,
    connections,
    connectionEvents: createConnectionEvents({ store: storage.connections, events: storage.connectionEvents }),
    runs,
    secrets,
    doctor,
    rotation,
    audit: storage.audit,
    workers: storage.workers,
    logger,
    version,
    sessions: storage.sessions,
    oauthFlow,
    publicUrl: config.publicUrl,
    setupLinks,
    ops: { readiness: readiness.checks, metrics, metricsAccess: config.metricsAccess },
  });

  let server: ServerType | null = null;
  let stopping: Promise<void> | null = null;
  let lock: ProcessLock | null = null;

  async function start(options: ForgelinkStartOptions): Promise<Listening | null> {
    // With SQLite forgelink is one process; with PostgreSQL a worker's data directory (its workspaces) is its own.
    if (storage.kind === 'sqlite' || worker !== null) {
      lock = await lockDataDir(
        config.dataDir,
        storage.kind === 'sqlite'
          ? 'With SQLite, forgelink runs as one process: stop the other one first, or use PostgreSQL (DATABASE_URL) to run several.'
          : 'Each forgelink process that executes runs needs a data directory of its own: set FORGELINK_DATA_DIR.',
      );
    }
    // With `listen`, the address is taken first: a process that cannot listen stops here, before its worker takes a run
    // or anything says it executes runs. Requests wait until the rest of the start (recovery included) is done.
    let listening: Listening | null = null;
    const started = Promise.withResolvers<boolean>();
    if (options.listen) {
      const serveApp: Fetch =
        role === 'worker' ? createWorkerApp({ version, worker: worker?.id ?? '', ops: { readiness: readiness.checks, metrics, metricsAccess: config.metricsAccess, apiKeys, logger } }).fetch : app.fetch;
      listening = await listen(async (request, ...rest) =>
        (await started.promise) ? serveApp(request, ...rest) : Response.json({ error: { code: 'not_started', message: 'forgelink could not start.' } }, { status: 503 }),
      );
    }
    try {
      await startParts();
    } catch (error) {
      started.resolve(false);
      throw error;
    }
    started.resolve(true);
    monitor?.start();
    if (listening === null) return null;
    if (role === 'worker') {
      logger.info({ address: listening.address, port: listening.port, worker: worker?.id }, `forgelink worker is ready: ${listening.url}/healthz`);
      return listening;
    }
    await announce(listening);
    return listening;
  }

  /** What `start` begins besides listening: the worker, recovery after a restart, the reaper. */
  async function startParts(): Promise<void> {
    if (worker !== null) {
      const { swept } = await worker.start();
      if (swept > 0) logger.warn({ worker: worker.id, runs: swept }, 'ended runs this worker left unfinished before it restarted (worker_lost)');
      logger.info({ worker: worker.id, capacity: config.runs.concurrency, runsPerUser: config.workers.runsPerUser, queue: queue.kind }, 'executing runs');
    }
    const recovered = await runs.recover();
    reaper?.start();
    // Rotations a crash interrupted: those with GitLab's answer are completed, the others resolved once they cannot still
    // be under way. In the background, since resolving asks GitLab; a connection used meanwhile finishes its own first.
    void rotator.recoverPending().then(
      (rotations) => {
        if (rotations.length > 0) logger.warn({ rotations }, 'recovered interrupted token rotations');
      },
      (error: unknown) => logger.error({ err: error }, 'recovering interrupted token rotations failed'),
    );
    if (recovered.interrupted > 0 || recovered.requeued > 0) logger.warn(recovered, 'recovered runs after a restart');
    if (monitor === null) {
      logger.warn({}, 'The connection health monitor is off (FORGELINK_MONITOR=off): connections are checked only on request and before runs.');
    }
  }

  /**
   * The lines a person starting forgelink reads: where it is and, while nobody has an account, a one-time
   * link to create the first administrator (a new one each start; docs/security.md, "First start").
   */
  async function announce(listening: Listening): Promise<void> {
    // FORGELINK_PUBLIC_URL, or the listen address; with port 0 only the listening socket knows the port.
    const base = config.listen.port === 0 ? listening.url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:') : config.publicUrl;
    const where = { address: listening.address, port: listening.port, database: storage.kind, dataDir: config.dataDir };
    logger.info(where, `forgelink is ready: ${base} (dashboard and API)`);
    if ((await storage.users.listUsers()).length > 0) return;
    const { token, expiresAt } = setupLinks.issue();
    const setupUrl = `${base}/setup?token=${token}`;
    const hours = SETUP_LINK_LIFETIME_MS / 3600_000;
    logger.warn(
      { setupUrl, expiresAt },
      `No users yet. Next step: open ${setupUrl} to create the first administrator (the link works once, for ${hours} hour${hours === 1 ? '' : 's'}), ` +
        'or run: ./bin/forgelink admin user add <name> --admin',
    );
  }

  function listen(fetch: Fetch): Promise<Listening> {
    return new Promise<Listening>((resolve, reject) => {
      server = serve({ fetch, hostname: config.listen.host, port: config.listen.port }, (info: AddressInfo) => {
        const url = `http://${info.family === 'IPv6' ? `[${info.address}]` : info.address}:${info.port}`;
        resolve({ address: info.address, port: info.port, url });
      });
      server.once('error', (error) => reject(listenError(error, config.listen)));
    });
  }

  /** The shutdown sequence, in one place. */
  async function stopAll(options: ForgelinkStopOptions): Promise<void> {
    // Stop taking requests; open ones (log streams) end as the parts below close.
    server?.close();
    // The monitor first: it gives its lease up, so another process takes over at its next wake.
    await monitor?.stop();
    if (worker !== null) {
      if ((options.drainMs ?? 0) > 0) logger.info({ worker: worker.id, running: worker.running().length, drainMs: options.drainMs }, 'draining: no new runs');
      await worker.drain(options.drainMs ?? 0);
    }
    await reaper?.stop();
    await signals.close();
    await queue.close();
    await notifier?.close();
    await oauth.close();
    await storage.close();
    lock?.release();
  }

  return {
    config,
    clock,
    logger,
    storage,
    vault,
    oauth,
    rotator,
    tokens,
    connections,
    oauthFlow,
    runs,
    worker,
    reaper,
    queue,
    signals,
    role,
    secrets,
    doctor,
    notifier,
    monitor,
    rotation,
    apiKeys,
    app,
    metrics,
    readiness,
    start,
    stop(options = {}) {
      stopping ??= stopAll(options);
      return stopping;
    },
  };
}
