/**
 * A separate forgelink process for rotation-processes.test.ts: it opens the same database as the test and either asks
 * the token provider for a connection's token (`mode: "token"`, which rotates a due token first) or rotates it
 * (`mode: "rotate"`). Settings come as one JSON line on stdin (never argv: they hold the master key); it answers
 * "ready", waits for "go", then prints `token <value>` or `outcome <status>`.
 *
 * FORGELINK_TEST_ROTATION_CRASH_AT=<step> (`claimed`, `answer-received` or `answer-recorded`) is the crash tests' hook:
 * the rotator kills this process with SIGKILL right after that step. Nothing in src/ reads it; only this script does.
 */
import { createInterface } from 'node:readline';
import { createRotator, createTokenProvider, type RotationStep } from '../../src/tokens/index.ts';
import { createGitLabOAuthClients, gitlabClientFactory } from '../../src/gitlab/index.ts';
import { openStorage, type StorageOptions } from '../../src/storage/index.ts';
import { createVault } from '../../src/vault/index.ts';

type Settings = { storage: StorageOptions; key: string; userId: string; connectionId: string; mode: 'token' | 'rotate' };

const crashAt = process.env['FORGELINK_TEST_ROTATION_CRASH_AT'];
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const settings = JSON.parse(String((await lines.next()).value)) as Settings;
const clock = { now: () => new Date() };
const policy = { allow: ['127.0.0.0/8'] };
const storage = await openStorage(settings.storage);
const vault = createVault({ keyring: { versions: [{ id: 'k1', key: Buffer.from(settings.key, 'base64') }] } });
const oauth = createGitLabOAuthClients({ apps: [], publicUrl: 'http://127.0.0.1:8080', scopes: ['api'], policy, clock });
const rotator = createRotator({
  store: storage.connections,
  vault,
  gitlab: gitlabClientFactory(policy, { maxRetries: 1, maxRetryAfterSeconds: 10 }),
  clock,
  audit: storage.audit,
  afterStep: (step: RotationStep) => {
    if (step === crashAt) process.kill(process.pid, 'SIGKILL');
  },
});
const tokens = createTokenProvider({ store: storage.connections, vault, oauth, clock, rotator });
try {
  const connection = await storage.connections.getConnection(settings.userId, settings.connectionId);
  if (connection === null) throw new Error('no such connection');
  process.stdout.write('ready\n');
  await lines.next();
  if (settings.mode === 'token') {
    process.stdout.write(`token ${await tokens.currentToken(connection)}\n`);
  } else {
    process.stdout.write(`outcome ${(await rotator.rotateIfDue(connection)).status}\n`);
  }
} finally {
  await oauth.close();
  await storage.close();
}
process.exit(0);
