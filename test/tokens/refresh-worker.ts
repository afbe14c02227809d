/**
 * A separate forgelink process asking for one OAuth connection's current token, for the cross-process test in
 * oauth-refresh.test.ts. Reads its settings as one JSON line on stdin (never argv: they hold a key and a client
 * secret), opens its own storage, answers "ready", waits for "go", then prints the token it was given.
 */
import { createInterface } from 'node:readline';
import { createTokenProvider } from '../../src/tokens/index.ts';
import { createGitLabOAuthClients } from '../../src/gitlab/index.ts';
import { openStorage, type StorageOptions } from '../../src/storage/index.ts';
import { createVault } from '../../src/vault/index.ts';
import type { OAuthApplication } from '../../src/gitlab/index.ts';

type Settings = { storage: StorageOptions; app: OAuthApplication; publicUrl: string; key: string; userId: string; connectionId: string };

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const first = await lines.next();
const settings = JSON.parse(String(first.value)) as Settings;
const clock = { now: () => new Date() };
const storage = await openStorage(settings.storage);
const oauth = createGitLabOAuthClients({
  apps: [settings.app],
  publicUrl: settings.publicUrl,
  scopes: ['api', 'read_user'],
  policy: { allow: ['127.0.0.0/8'] },
  clock,
});
const tokens = createTokenProvider({
  store: storage.connections,
  vault: createVault({ keyring: { versions: [{ id: 'k1', key: Buffer.from(settings.key, 'base64') }] } }),
  oauth,
  clock,
});
try {
  const connection = await storage.connections.getConnection(settings.userId, settings.connectionId);
  if (connection === null) throw new Error('no such connection');
  process.stdout.write('ready\n');
  await lines.next();
  process.stdout.write(`token ${await tokens.currentToken(connection)}\n`);
} finally {
  await oauth.close();
  await storage.close();
}
process.exit(0);
