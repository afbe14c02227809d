import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createConnectionService } from '../../src/connections/index.ts';
import { generateApiKey, hashApiKey, newId, type Clock } from '../../src/core/index.ts';
import { createGitLabProbe, gitlabClientFactory } from '../../src/gitlab/index.ts';
import { createApp, createLogger, type App } from '../../src/server/index.ts';
import type { Storage } from '../../src/storage/index.ts';
import { createVault } from '../../src/vault/index.ts';
import { databases } from './databases.ts';

export type TestUser = { id: string; name: string; apiKey: string };

/** forgelink wired in-process over real storage, talking to GitLab over real HTTP(S). */
export type TestForgelink = {
  app: App;
  storage: Storage;
  /** Every log line the app wrote. */
  logs: string[];
  addUser(name: string): Promise<TestUser>;
  /** `app.request` with the user's API key and JSON body. */
  call(user: TestUser | null, method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }>;
  close(): Promise<void>;
};

export async function startForgelink(options: { database?: 'sqlite' | 'postgres'; clock?: Clock } = {}): Promise<TestForgelink> {
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
  const connections = createConnectionService({
    store: storage.connections,
    vault,
    gitlab: gitlabClientFactory(policy, transport),
    probe: createGitLabProbe(policy, transport),
    clock,
    newId: () => newId('con'),
    allowHttp: false,
  });
  const app = createApp({ users: storage.users, connections, logger, version: 'test' });

  return {
    app,
    storage,
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
    close: () => storage.close(),
  };
}
