import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { createForgelink, type Forgelink, type ForgelinkOverrides } from '../../src/compose.ts';
import { readConfig, type Config } from '../../src/config/index.ts';
import { generateApiKey, hashApiKey, newId, type Clock, type GitLabOAuthFlow } from '../../src/core/index.ts';
import type { OAuthApplication } from '../../src/gitlab/index.ts';
import { databases } from './databases.ts';

export type TestUser = { id: string; name: string; apiKey: string };

/**
 * forgelink as `createForgelink` builds it (not started: no monitor, no listening), over real storage, talking to
 * GitLab over real HTTP(S).
 */
export type TestForgelink = Pick<Forgelink, 'app' | 'storage' | 'rotator' | 'connections' | 'runs' | 'vault' | 'tokens' | 'oauth' | 'metrics' | 'readiness'> & {
  /** The OAuth flow over `options.oauth`'s applications; reading it without any application configured throws. */
  oauthFlow: GitLabOAuthFlow;
  /** Where run workspaces and sandboxes live. */
  workDir: string;
  /** Every log line the app wrote. */
  logs: string[];
  /** A user with an API key; `isAdmin` makes an administrator. */
  addUser(name: string, options?: { isAdmin?: boolean }): Promise<TestUser>;
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
    runs?: Partial<Config['runs']>;
    oauth?: TestOAuthOptions;
    rotation?: ForgelinkOverrides['rotation'];
    /** FORGELINK_AGENTS: the operator's agent profiles (JSON). */
    agents?: string;
    /** More environment the configuration is read from (FORGELINK_UPSTREAM_PROXY, say). */
    env?: Record<string, string>;
  } = {},
): Promise<TestForgelink> {
  const db = databases().find((candidate) => candidate.name === (options.database ?? 'sqlite'));
  if (db === undefined) throw new Error('unknown database');
  // The data directory holds run workspaces and sandboxes; the database is the test's own.
  const workDir = await mkdtemp(path.join(tmpdir(), 'forgelink-runs-'));
  const defaults = readConfig({
    FORGELINK_DATA_DIR: workDir,
    FORGELINK_LOG_LEVEL: 'debug',
    FORGELINK_MONITOR: 'off',
    // Tests run the fake GitLab on loopback, which the outbound policy refuses unless allowed.
    FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8,::1',
    // Runs compete with the tests' own processes as equals (test/sandbox/cpu-priority.test.ts proves the priority).
    FORGELINK_RUN_CPU_WEIGHT: 'off',
    FORGELINK_RUN_NICE: '0',
    ...(options.agents === undefined ? {} : { FORGELINK_AGENTS: options.agents }),
    ...options.env,
  });
  const config: Config = {
    ...defaults,
    publicUrl: options.oauth?.publicUrl ?? TEST_PUBLIC_URL,
    gitlabOAuthApps: options.oauth?.apps ?? [],
    gitlabOAuthScopes: options.oauth?.scopes ?? defaults.gitlabOAuthScopes,
    runs: { ...defaults.runs, defaultTimeoutMs: 120_000, maxTimeoutMs: 600_000, sandboxMounts: [EXAMPLES_DIR], ...options.runs },
  };
  const logs: string[] = [];
  const forgelink = await createForgelink(config, {
    storage: await db.open(),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    logStream: new Writable({
      write(chunk, _encoding, done) {
        logs.push(String(chunk));
        done();
      },
    }),
    keyring: { versions: [{ id: 'k1', key: randomBytes(32) }] },
    gitlabSleep: async () => {},
    ...(options.rotation === undefined ? {} : { rotation: options.rotation }),
    ...(options.oauth?.refreshMarginMs === undefined ? {} : { tokenRefreshMarginMs: options.oauth.refreshMarginMs }),
  });
  const { app, storage, clock, oauthFlow } = forgelink;
  // Runs execute in this process, as under `forgelink serve` (the rest of `start` — monitor, listening — stays off).
  await forgelink.worker?.start();

  return {
    app,
    storage,
    rotator: forgelink.rotator,
    connections: forgelink.connections,
    runs: forgelink.runs,
    vault: forgelink.vault,
    tokens: forgelink.tokens,
    oauth: forgelink.oauth,
    metrics: forgelink.metrics,
    readiness: forgelink.readiness,
    get oauthFlow() {
      if (oauthFlow === null) throw new Error('this test forgelink has no OAuth application: pass options.oauth.apps');
      return oauthFlow;
    },
    workDir,
    logs,
    async addUser(name, userOptions) {
      const apiKey = generateApiKey();
      const user = await storage.users.createUser({
        id: newId('usr'),
        name,
        isAdmin: userOptions?.isAdmin === true,
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
      await forgelink.stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
