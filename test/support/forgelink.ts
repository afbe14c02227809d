import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { auditedTokens, createConnectionService, createDoctorService, createOAuthFlow, createTokenProvider } from '../../src/connections/index.ts';
import { generateApiKey, hashApiKey, newId, type Clock, type GitLabOAuthClients, type GitLabOAuthFlow, type TokenProvider, type Vault } from '../../src/core/index.ts';
import { createGitLabOAuthClients, createGitLabProbe, gitlabClientFactory, type OAuthApplication } from '../../src/gitlab/index.ts';
import { createConnectionEvents, type ConnectionService } from '../../src/connections/index.ts';
import { createRunService, type RunService, type RunSettings } from '../../src/runs/index.ts';
import { createBubblewrapDriver } from '../../src/sandbox/index.ts';
import { createRotationService, createRotator, type Rotator, type RotatorDeps } from '../../src/connections/index.ts';
import { createApp, createLogger, type App } from '../../src/server/index.ts';
import type { Storage } from '../../src/storage/index.ts';
import { createVault } from '../../src/vault/index.ts';
import { databases } from './databases.ts';

export type TestUser = { id: string; name: string; apiKey: string };

/** forgelink wired in-process over real storage, talking to GitLab over real HTTP(S). */
export type TestForgelink = {
  app: App;
  storage: Storage;
  /** Rotates opted-in personal access tokens (before use, `POST /connections/:id/rotate`). */
  rotator: Rotator;
  /** The connection service behind the API; the health monitor's checks go through it. */
  connections: ConnectionService;
  runs: RunService;
  vault: Vault;
  tokens: TokenProvider;
  oauth: GitLabOAuthClients;
  /** The OAuth flow over `options.oauth`'s applications (none configured: every start is refused). */
  oauthFlow: GitLabOAuthFlow;
  /** Where run workspaces and sandboxes live. */
  workDir: string;
  /** Every log line the app wrote. */
  logs: string[];
  addUser(name: string): Promise<TestUser>;
  /** `app.request` with the user's API key and JSON body. */
  call(user: TestUser | null, method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }>;
  close(): Promise<void>;
};

/** The example agents, mounted read-only into every test sandbox. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/agents', import.meta.url));

/** OAuth settings of a test forgelink: the applications registered at a fake GitLab, and how early tokens are refreshed. */
export type TestOAuthOptions = {
  apps: OAuthApplication[];
  publicUrl?: string;
  scopes?: string[];
  refreshMarginMs?: number;
};

export const TEST_PUBLIC_URL = 'http://127.0.0.1:8080';

export async function startForgelink(
  options: {
    database?: 'sqlite' | 'postgres';
    clock?: Clock;
    runs?: Partial<RunSettings>;
    oauth?: TestOAuthOptions;
    rotation?: Partial<Pick<RotatorDeps, 'requestMs' | 'settleMs' | 'waitMs'>>;
  } = {},
): Promise<TestForgelink> {
  const db = databases().find((candidate) => candidate.name === (options.database ?? 'sqlite'));
  if (db === undefined) throw new Error('unknown database');
  const storage = await db.open();
  const clock = options.clock ?? { now: () => new Date() };
  const logs: string[] = [];
  const logger = createLogger(
    'debug',
    new Writable({
      write(chunk, _encoding, done) {
        logs.push(String(chunk));
        done();
      },
    }),
  );
  const vault = createVault({ keyring: { versions: [{ id: 'k1', key: randomBytes(32) }] } });
  // Tests run the fake GitLab on loopback, which the outbound policy refuses unless allowed.
  const policy = { allow: ['127.0.0.0/8', '::1'] };
  const transport = { logger, sleep: async () => {} };
  const oauth = createGitLabOAuthClients({
    apps: options.oauth?.apps ?? [],
    publicUrl: options.oauth?.publicUrl ?? TEST_PUBLIC_URL,
    scopes: options.oauth?.scopes ?? ['api', 'read_user'],
    policy,
    clock,
    logger,
  });
  const rotator = createRotator({
    store: storage.connections,
    vault,
    gitlab: gitlabClientFactory(policy, { ...transport, maxRetries: 1, maxRetryAfterSeconds: 10 }),
    clock,
    audit: storage.audit,
    logger,
    inUse: async (connection) =>
      (await storage.runs.listRunsByStatus(['preparing', 'cloning', 'running', 'collecting'])).some((run) => run.connectionId === connection.id),
    ...options.rotation,
  });
  const tokens = createTokenProvider({
    store: storage.connections,
    vault,
    oauth,
    clock,
    logger,
    rotator,
    ...(options.oauth?.refreshMarginMs === undefined ? {} : { refreshMarginMs: options.oauth.refreshMarginMs }),
  });
  const connections = createConnectionService({
    audit: storage.audit,
    store: storage.connections,
    vault,
    gitlab: gitlabClientFactory(policy, transport),
    probe: createGitLabProbe(policy, transport),
    clock,
    newId: () => newId('con'),
    allowHttp: false,
    tokens,
    oauth,
  });
  const oauthFlow = createOAuthFlow({
    audit: storage.audit,
    states: storage.oauthStates,
    store: storage.connections,
    vault,
    oauth,
    gitlab: gitlabClientFactory(policy, transport),
    clock,
    newId,
    allowHttp: false,
    logger,
  });
  const workDir = await mkdtemp(path.join(tmpdir(), 'forgelink-runs-'));
  const runs = createRunService({
    audit: storage.audit,
    runs: storage.runs,
    connections: storage.connections,
    tokens,
    gitlab: gitlabClientFactory(policy, transport),
    sandbox: createBubblewrapDriver({ stateDir: path.join(workDir, 'sandboxes'), extraReadOnlyPaths: [EXAMPLES_DIR], logger }),
    clock,
    settings: {
      workDir: path.join(workDir, 'runs'),
      concurrency: 2,
      defaultTimeoutMs: 120_000,
      maxTimeoutMs: 600_000,
      extraHosts: [],
      userHostPatterns: [],
      ...options.runs,
    },
    outboundPolicy: policy,
    newId: () => newId('run'),
    onError: (error) => logs.push(`run error: ${String(error)}\n`),
  });
  const doctor = createDoctorService({
    deps: { policy, gitlab: gitlabClientFactory(policy, transport), clock, runExtraHosts: [] },
    store: storage.connections,
    tokenFor: (connection) => auditedTokens(tokens, storage.audit, clock, { actor: connection.userId, reason: 'doctor' }).currentToken(connection),
  });
  const app = createApp({
    audit: storage.audit,
    doctor,
    users: storage.users,
    sessions: storage.sessions,
    connections,
    rotation: createRotationService({ store: storage.connections, rotator, clock }),
    connectionEvents: createConnectionEvents({ store: storage.connections, events: storage.connectionEvents }),
    runs,
    logger,
    version: 'test',
    oauthFlow,
    publicUrl: options.oauth?.publicUrl ?? TEST_PUBLIC_URL,
  });

  return {
    app,
    storage,
    rotator,
    connections,
    runs,
    vault,
    tokens,
    oauth,
    oauthFlow,
    workDir,
    logs,
    async addUser(name) {
      const apiKey = generateApiKey();
      const user = await storage.users.createUser({
        id: newId('usr'),
        name,
        isAdmin: false,
        apiKeyHash: hashApiKey(apiKey),
        createdAt: clock.now().toISOString(),
      });
      return { id: user.id, name, apiKey };
    },
    async call(user, method, path, body) {
      const headers: Record<string, string> = {};
      if (user !== null) headers.authorization = `Bearer ${user.apiKey}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const response = await app.request(path, {
        method,
        headers,
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      let json: unknown = null;
      try {
        json = text === '' ? null : JSON.parse(text);
      } catch {
        json = null;
      }
      return { status: response.status, json, text };
    },
    async close() {
      await runs.stop();
      await oauth.close();
      await storage.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
