import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { databases, type TestTarget } from '../support/databases.ts';
import { forgelinkCli, startServerProcess, type RunningServer } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';

const SECRET = 'process-test-secret';

function checksLogged(server: RunningServer): number {
  return server.output().split('\n').filter((line) => line.includes('"msg":"connection checked"')).length;
}

// Several processes share one PostgreSQL database (each its own data directory and the same master key), as on
// several machines; with SQLite forgelink is one process.
test('two forgelink serve processes on one database: one monitors, the other stands by and takes over when the first stops', async () => {
  const home = await mkdtemp(join(tmpdir(), 'forgelink-monitor-'));
  const target: TestTarget = await databases().find((db) => db.name === 'postgres')!.createTarget();
  const gitlab = await startFakeGitLab({ tls: true });
  const receiver = await startWebhookReceiver();
  const servers: RunningServer[] = [];
  try {
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      DATABASE_URL: target.options.databaseUrl,
      FORGELINK_MASTER_KEY: randomBytes(32).toString('base64'),
      FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
      FORGELINK_LOG_LEVEL: 'debug',
      FORGELINK_MONITOR_INTERVAL: '2s',
      FORGELINK_MONITOR_JITTER: '0',
      FORGELINK_NOTIFY_WEBHOOK: receiver.url,
      FORGELINK_NOTIFY_WEBHOOK_SECRET: SECRET,
    };
    const machine = (name: string) => ({ ...env, FORGELINK_DATA_DIR: join(home, name) });
    const added = await forgelinkCli(['admin', 'user', 'add', 'alice', '--json'], { env: machine('a') });
    assert.equal(added.code, 0, added.stderr);
    const apiKey: string = JSON.parse(added.stdout).apiKey;
    servers.push(await startServerProcess(machine('a')));
    servers.push(await startServerProcess(machine('b')));

    const botId = gitlab.addUser({ username: 'agent-bot' }).id;
    const tokens = [0, 1].map(() => gitlab.addToken(botId, { scopes: ['read_repository', 'write_repository'], expiresAt: '2099-01-31' }));
    for (const token of tokens) {
      const response = await fetch(`${servers[0]!.url}/api/v1/connections`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token }),
      });
      assert.equal(response.status, 201, await response.text());
    }

    await waitFor('a few rounds of checks', () => servers.reduce((sum, server) => sum + checksLogged(server), 0) >= 4);
    const counts = servers.map(checksLogged);
    assert.equal(counts.filter((count) => count > 0).length, 1, `only one process checks: ${counts.join(' / ')}`);
    const leader = counts[0]! > 0 ? 0 : 1;
    assert.match(servers[leader]!.output(), /connection monitor holds the lease/);
    assert.doesNotMatch(servers[1 - leader]!.output(), /connection monitor holds the lease/);

    // Revoked at GitLab: the monitoring process notices and the webhook hears it, signed.
    gitlab.revokeToken(tokens[0]!);
    await waitFor('the status_changed webhook', () => receiver.deliveries.some((delivery) => delivery.json.event === 'connection.status_changed'));
    const [delivery] = receiver.deliveries;
    assert.equal(delivery?.json.connection.status, 'revoked');
    assert.equal(delivery?.json.ownerName, 'alice');
    assert.equal(delivery?.headers['x-forgelink-signature'], `sha256=${createHmac('sha256', SECRET).update(delivery?.body ?? '').digest('hex')}`);

    // The monitoring process stops; it gives the lease up and the other carries on with the healthy connection.
    await servers[leader]!.stop();
    const before = checksLogged(servers[1 - leader]!);
    await waitFor('the other process to check', () => checksLogged(servers[1 - leader]!) > before);
    assert.match(servers[1 - leader]!.output(), /connection monitor holds the lease/);
    assert.equal(receiver.deliveries.length, 1, 'the transition was sent once, not again by the process that took over');
  } finally {
    for (const server of servers) await server.stop();
    await receiver.close();
    await gitlab.close();
    await target.dispose();
    await rm(home, { recursive: true, force: true });
  }
});
