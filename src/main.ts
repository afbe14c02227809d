/**
 * The one place that names concrete implementations and wires them together (docs/architecture.md). Everything
 * else receives its dependencies as arguments.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { runCli, type LocalActions } from './cli/index.ts';
import { createRotationService, createRotator } from './connections/index.ts';
import { ConfigError, readConfig, type Config } from './config/index.ts';
import {
  auditedTokens,
  createConnectionEvents,
  createConnectionService,
  createDoctorService,
  createHealthMonitor,
  createOAuthFlow,
  createTokenProvider,
} from './connections/index.ts';
import { ForgelinkError, generateApiKey, hashApiKey, InputError, newId, type Clock } from './core/index.ts';
import { createGitLabOAuthClients, createGitLabProbe, gitlabClientFactory } from './gitlab/index.ts';
import { createWebhookNotifier } from './notify/index.ts';
import { createApp, createLogger, hashPassword, passwordProblem } from './server/index.ts';
import { createRunService } from './runs/index.ts';
import { createBubblewrapDriver } from './sandbox/index.ts';
import { openStorage, type Storage } from './storage/index.ts';
import { addKeyVersion, createFileBackedVault, createVault, loadKeyring, rotateSecrets } from './vault/index.ts';

const clock: Clock = { now: () => new Date() };

async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function keySettings(config: Config) {
  return { dataDir: config.dataDir, ...config.masterKey };
}

async function withStorage<T>(config: Config, use: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl ?? undefined, clock });
  try {
    return await use(storage);
  } finally {
    await storage.close();
  }
}

/** Starts the HTTP API; resolves when the server is listening, and stops cleanly on SIGINT/SIGTERM. */
async function startServer(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  const loaded = await loadKeyring(keySettings(config));
  for (const notice of loaded.notices) logger.warn({ keyring: loaded.source.kind }, notice);
  // A keyring from a file can gain versions through `admin rotate-key` while the server runs.
  const vault =
    loaded.source.kind === 'env'
      ? createVault({ keyring: loaded.keyring })
      : createFileBackedVault({ keyring: loaded.keyring, path: loaded.source.path });
  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl ?? undefined, clock });
  if ((await storage.users.listUsers()).length === 0) {
    logger.warn({}, 'No users yet: create one with "forgelink admin user add <name>" (npm run forgelink -- admin user add <name>).');
  }
  const policy = { allow: config.outboundAllow };
  const transport = { logger };
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
    // Runs past `queued` hold the token in their sandbox (GITLAB_TOKEN): a rotation would revoke it under them.
    inUse: async (connection) =>
      (await storage.runs.listRunsByStatus(['preparing', 'cloning', 'running', 'collecting'])).some((run) => run.connectionId === connection.id),
  });
  const tokens = createTokenProvider({ store: storage.connections, vault, oauth, clock, logger, rotator });
  const connections = createConnectionService({
    audit: storage.audit,
    store: storage.connections,
    vault,
    gitlab: gitlabClientFactory(policy, transport),
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
          gitlab: gitlabClientFactory(policy, transport),
          clock,
          newId,
          allowHttp: config.allowHttp,
          logger,
        });
  const runs = createRunService({
    audit: storage.audit,
    runs: storage.runs,
    connections: storage.connections,
    tokens,
    gitlab: gitlabClientFactory(policy, transport),
    sandbox: createBubblewrapDriver({
      stateDir: path.join(config.dataDir, 'sandboxes'),
      extraReadOnlyPaths: config.runs.sandboxMounts,
      logger,
    }),
    clock,
    settings: { ...config.runs, workDir: path.join(config.dataDir, 'runs') },
    outboundPolicy: policy,
    newId: () => newId('run'),
    onError: (error, runId) => logger.error({ err: error, runId }, 'run failed inside forgelink'),
  });
  const recovered = await runs.recover();
  // Rotations a crash interrupted: those with GitLab's answer are completed, the others resolved once they cannot still
  // be under way. In the background, since resolving asks GitLab; a connection used meanwhile finishes its own first.
  void rotator.recoverPending().then(
    (rotations) => {
      if (rotations.length > 0) logger.warn({ rotations }, 'recovered interrupted token rotations');
    },
    (error: unknown) => logger.error({ err: error }, 'recovering interrupted token rotations failed'),
  );
  if (recovered.interrupted > 0 || recovered.requeued > 0) logger.warn(recovered, 'recovered runs after a restart');
  const doctor = createDoctorService({
    deps: { policy, gitlab: gitlabClientFactory(policy, transport), clock, runExtraHosts: config.runs.extraHosts },
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
  if (monitor === null) logger.warn({}, 'The connection health monitor is off (FORGELINK_MONITOR=off): connections are checked only on request and before runs.');
  const app = createApp({
    users: storage.users,
    connections,
    connectionEvents: createConnectionEvents({ store: storage.connections, events: storage.connectionEvents }),
    runs,
    doctor,
    rotation: createRotationService({ store: storage.connections, rotator, clock }),
    audit: storage.audit,
    logger,
    version: await version(),
    sessions: storage.sessions,
    oauthFlow,
    publicUrl: config.publicUrl,
  });

  await new Promise<void>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: config.listen.host, port: config.listen.port }, (info) => {
      logger.info(
        { address: info.address, port: info.port, database: storage.kind, dataDir: config.dataDir },
        `forgelink listening on http://${info.family === 'IPv6' ? `[${info.address}]` : info.address}:${info.port}`,
      );
      monitor?.start();
      resolve();
    });
    server.once('error', reject);
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      server.close();
      // The monitor first: it gives its lease up, so another process takes over at its next wake.
      void (monitor?.stop() ?? Promise.resolve())
        .then(() => runs.stop())
        .then(() => notifier?.close())
        .then(() => oauth.close())
        .then(() => storage.close())
        .then(() => process.exit(0));
      setTimeout(() => process.exit(0), 15_000).unref();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

async function checkedPasswordHash(password: string): Promise<string> {
  const problem = passwordProblem(password);
  if (problem !== null) throw new InputError('invalid_password', problem, { field: 'password' });
  return hashPassword(password);
}

function localActions(env: NodeJS.ProcessEnv): LocalActions {
  const config = () => readConfig(env);
  return {
    serve: () => startServer(config()),
    async addUser(name, isAdmin, password) {
      const trimmed = name.trim();
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(trimmed)) {
        throw new InputError('invalid_name', 'A user name is 1–64 letters, digits, dots, dashes or underscores.', { field: 'name' });
      }
      const passwordHash = password === undefined ? null : await checkedPasswordHash(password);
      return withStorage(config(), async (storage) => {
        if ((await storage.users.findUserByName(trimmed)) !== null) {
          throw new InputError('user_exists', `A user named ${trimmed} already exists.`, { field: 'name' });
        }
        const apiKey = generateApiKey();
        const user = await storage.users.createUser({
          id: newId('usr'),
          name: trimmed,
          isAdmin,
          apiKeyHash: hashApiKey(apiKey),
          createdAt: clock.now().toISOString(),
        });
        if (passwordHash !== null) await storage.users.setPasswordHash(user.id, passwordHash);
        return { id: user.id, name: user.name, isAdmin: user.isAdmin, apiKey };
      });
    },
    async setPassword(name, password) {
      const passwordHash = await checkedPasswordHash(password);
      return withStorage(config(), async (storage) => {
        const user = await storage.users.findUserByName(name.trim());
        if (user === null) throw new InputError('user_not_found', `There is no user named ${name.trim()}.`, { field: 'name' });
        await storage.users.setPasswordHash(user.id, passwordHash);
        // A new password signs the user out everywhere: whoever knew the old one loses their session too.
        return { name: user.name, sessionsEnded: await storage.sessions.deleteUserSessions(user.id) };
      });
    },
    listUsers: () => withStorage(config(), (storage) => storage.users.listUsers()),
    async rotateKey(options) {
      const settings = keySettings(config());
      const keyring = options.resealOnly ? (await loadKeyring(settings)).keyring : (await addKeyVersion(settings)).keyring;
      const vault = createVault({ keyring });
      const report = await withStorage(config(), (storage) => rotateSecrets({ vault, store: storage.connections }));
      return { keyId: vault.currentKeyId(), ...report };
    },
  };
}

async function main(): Promise<void> {
  try {
    const code = await runCli(process.argv, localActions(process.env));
    if (code !== 0) process.exitCode = code;
  } catch (error) {
    // Errors from local actions that the CLI could not word (configuration, storage) end up here.
    const message =
      error instanceof ConfigError || error instanceof ForgelinkError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`forgelink: ${message}\n`);
    process.exitCode = 1;
  }
}

await main();
