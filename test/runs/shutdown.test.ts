import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { openStorage } from '../../src/storage/index.ts';
import { forgelinkCli, startServerProcess, type RunningServer } from '../support/processes.ts';
import { waitForNoProcesses } from '../sandbox/helpers.ts';

/** Resolves with `probe`'s value once it is not null, polling; fails after `timeoutMs` with `what`. */
async function eventually<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('SIGTERM to forgelink serve drains: a running run that outlasts FORGELINK_WORKER_DRAIN ends failed/worker_stopped (not canceled), nothing left running', async () => {
  const home = await mkdtemp(join(tmpdir(), 'forgelink-shutdown-'));
  const gitlab = await startFakeGitLab({ tls: true });
  let server: RunningServer | undefined;
  try {
    const dataDir = join(home, 'data');
    const env = { PATH: process.env.PATH, HOME: home, FORGELINK_DATA_DIR: dataDir, FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8', FORGELINK_WORKER_DRAIN: '1s' };
    const added = await forgelinkCli(['admin', 'user', 'add', 'alice', '--json'], { env });
    assert.equal(added.code, 0, added.stderr);
    const apiKey: string = JSON.parse(added.stdout).apiKey;
    server = await startServerProcess(env);
    const url = server.url;
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, json: (await response.json()) as any };
    };

    const botId = gitlab.addUser({ username: 'agent-bot' }).id;
    gitlab.addProject({ path: 'acme/api', members: [{ userId: botId, accessLevel: 30 }] });
    const token = gitlab.addToken(botId, { scopes: ['read_repository'], expiresAt: '2099-01-31' });
    const connection = await call('POST', '/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(connection.status, 201, JSON.stringify(connection.json));

    // The marker is in the agent's command line (sh's and bwrap's), so its processes can be found on the host.
    const marker = `shutdown-${randomUUID()}`;
    const started = await call('POST', '/runs', {
      connectionId: connection.json.id,
      project: 'acme/api',
      command: ['sh', '-c', `echo agent-started; sleep 600; echo ${marker}`],
    });
    assert.equal(started.status, 201, JSON.stringify(started.json));
    const runId: string = started.json.id;
    await eventually('the agent to be running', async () => {
      const log = await call('GET', `/runs/${runId}/log`);
      const text = log.json.entries.map((entry: { text: string }) => entry.text).join('');
      return log.json.run.status === 'running' && text.includes('agent-started') ? true : null;
    });

    const exited = new Promise<number | null>((resolve) => server!.child.once('exit', (code) => resolve(code)));
    server.child.kill('SIGTERM');
    assert.equal(await exited, 0, server.output());

    const storage = await openStorage({ dataDir });
    try {
      const run = await storage.runs.getRunById(runId);
      assert.equal(run?.status, 'failed', JSON.stringify(run));
      assert.equal(run?.error?.code, 'worker_stopped');
      assert.match(run?.error?.message ?? '', /forgelink was shut down/);
      assert.ok(run?.finishedAt, 'the run has an end time');
      const log = (await storage.runs.readLog(runId, 0)).map((entry) => entry.text).join('');
      assert.match(log, /forgelink was shut down while this run was in progress/);
      assert.doesNotMatch(log, /canceled/);
    } finally {
      await storage.close();
    }
    assert.deepEqual(await waitForNoProcesses(marker), [], 'no process of the run survives the shutdown');
    assert.deepEqual(await readdir(join(dataDir, 'runs')).catch(() => []), []);
    assert.deepEqual(await readdir(join(dataDir, 'sandboxes')).catch(() => []), []);
  } finally {
    await server?.stop();
    await gitlab.close();
    await rm(home, { recursive: true, force: true });
  }
});
