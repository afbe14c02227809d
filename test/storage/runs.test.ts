import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConflictError, NotFoundError, type Run, type RunLogEntry } from '../../src/core/index.ts';
import { openStorage, type Storage, type StorageOptions } from '../../src/storage/index.ts';
import { databases } from '../support/databases.ts';
import { newConnection, newUser } from '../support/records.ts';
import { newRun } from './run-records.ts';

const PER_PROCESS = 200;
const WORKER = fileURLToPath(new URL('./append-log-worker.ts', import.meta.url));

function entry(text: string, stream: RunLogEntry['stream'] = 'stdout'): Omit<RunLogEntry, 'seq'> {
  return { at: new Date().toISOString(), stream, text };
}

function runWorker(options: StorageOptions, runId: string, name: string, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(options), runId, name, String(count)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`worker ${name} exited with ${code}:\n${stderr}`)),
    );
  });
}

/** Seqs are exactly 1..n, and each writer's entries keep its own order. */
function assertConsecutive(log: RunLogEntry[], writers: string[], perWriter: number): void {
  assert.deepEqual(
    log.map((e) => e.seq),
    Array.from({ length: writers.length * perWriter }, (_, i) => i + 1),
  );
  for (const writer of writers) {
    const own = log.filter((e) => e.text.startsWith(`${writer}:`)).map((e) => Number(e.text.split(':')[1]));
    assert.deepEqual(own, Array.from({ length: perWriter }, (_, i) => i), `${writer}'s entries out of order`);
  }
}

for (const db of databases()) {
  describe(`runs on ${db.name}`, () => {
    let storage: Storage;
    let alice: string;
    let bob: string;

    beforeEach(async () => {
      storage = await db.open();
      alice = (await storage.users.createUser(newUser())).id;
      bob = (await storage.users.createUser(newUser())).id;
    });
    afterEach(async () => {
      await storage.close();
    });

    test('stores and returns every field of a run, JSON fields included', async () => {
      const run = newRun(alice, {
        projectId: 4_000_000_001,
        projectPath: 'group/sub/app',
        projectWebUrl: 'https://gitlab.example.com/group/sub/app',
        branch: 'dev',
        baseBranch: 'dev',
        command: ['node', '-e', 'console.log("ünïcode ✓ \\"quoted\\"")'],
        allowHosts: ['registry.npmjs.org:443', '*.example.com:443'],
        timeoutMs: 30 * 24 * 3600 * 1000,
        status: 'failed',
        error: { code: 'agent_failed', message: 'exit 3' },
        exitCode: 3,
        warnings: [{ code: 'default_branch_unprotected', message: 'main is not protected' }],
        outputs: {
          branches: [{ name: 'agent/fix', sha: 'a'.repeat(40), created: true, webUrl: 'https://g/-/tree/agent/fix' }],
          mergeRequests: [
            { iid: 3, title: 'Fix', sourceBranch: 'agent/fix', targetBranch: 'dev', webUrl: 'https://g/-/merge_requests/3', detectedBy: 'api' },
            { iid: 4, title: null, sourceBranch: 'x', targetBranch: null, webUrl: 'https://g/-/merge_requests/4', detectedBy: 'push' },
          ],
          issues: [{ iid: 9, title: 'Found a bug', webUrl: 'https://g/-/issues/9' }],
        },
        egress: { allowed: ['gitlab.example.com:443'], refused: ['evil.example:443'] },
        credentials: 'brokered',
        policy: {
          refused: [{ at: '2026-01-01T00:00:02.000Z', method: 'PUT', target: 'g:443/api/v4/projects/1/merge_requests/3/merge', rule: 'api.merge', message: 'forgelink policy (api.merge): no' }],
          options: { allowTags: true, allowMerge: false, readOtherProjects: false },
        },
        startedAt: '2026-01-01T00:00:01.000Z',
        finishedAt: '2026-01-01T00:05:00.000Z',
      });
      await storage.runs.createRun(run);
      assert.deepEqual(await storage.runs.getRun(alice, run.id), run);
      assert.deepEqual(await storage.runs.getRunById(run.id), run);
    });

    test('a run of a missing id is null', async () => {
      assert.equal(await storage.runs.getRun(alice, randomUUID()), null);
      assert.equal(await storage.runs.getRunById(randomUUID()), null);
    });

    test('another user’s run reads like a missing one', async () => {
      const run = newRun(alice);
      await storage.runs.createRun(run);
      assert.equal(await storage.runs.getRun(bob, run.id), null);
      assert.deepEqual(await storage.runs.listRuns(bob), []);
    });

    test('refuses a second run with the same id', async () => {
      const run = newRun(alice);
      await storage.runs.createRun(run);
      await assert.rejects(storage.runs.createRun(newRun(bob, { id: run.id })), ConflictError);
    });

    test('refuses a run of an unknown user', async () => {
      await assert.rejects(storage.runs.createRun(newRun(randomUUID())));
    });

    test('lists the user’s runs newest first, 50 by default, with a limit', async () => {
      const runs: Run[] = [];
      for (let i = 0; i < 55; i++) {
        const createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
        runs.push(newRun(alice, { createdAt }));
      }
      for (const run of [...runs].reverse()) await storage.runs.createRun(run);
      await storage.runs.createRun(newRun(bob));
      const newestFirst = runs.map((run) => run.id).reverse();
      assert.deepEqual((await storage.runs.listRuns(alice)).map((run) => run.id), newestFirst.slice(0, 50));
      assert.deepEqual((await storage.runs.listRuns(alice, { limit: 3 })).map((run) => run.id), newestFirst.slice(0, 3));
      assert.equal((await storage.runs.listRuns(alice, { limit: 0 })).length, 1);
    });

    test('updates the given fields and returns the result', async () => {
      const run = newRun(alice);
      await storage.runs.createRun(run);
      const patch = {
        status: 'succeeded',
        exitCode: 0,
        projectId: 42,
        outputs: { branches: [], mergeRequests: [], issues: [{ iid: 1, title: 't', webUrl: 'u' }] },
        finishedAt: '2026-01-01T00:00:00.000Z',
        error: null,
      } satisfies Parameters<Storage['runs']['updateRun']>[1];
      const updated = await storage.runs.updateRun(run.id, patch);
      assert.deepEqual(updated, { ...run, ...patch });
      assert.deepEqual(await storage.runs.getRun(alice, run.id), updated);
      assert.deepEqual(await storage.runs.updateRun(run.id, {}), updated);
      assert.deepEqual(await storage.runs.updateRun(run.id, { status: undefined }), updated);
    });

    test('updating a missing run is a NotFoundError', async () => {
      await assert.rejects(storage.runs.updateRun(randomUUID(), { status: 'failed' }), NotFoundError);
      await assert.rejects(storage.runs.updateRun(randomUUID(), {}), NotFoundError);
    });

    test('lists runs by status across users, oldest first', async () => {
      const a = newRun(alice, { status: 'running', createdAt: '2026-01-02T00:00:00.000Z' });
      const b = newRun(bob, { status: 'queued', createdAt: '2026-01-01T00:00:00.000Z' });
      const c = newRun(alice, { status: 'succeeded' });
      for (const run of [a, b, c]) await storage.runs.createRun(run);
      assert.deepEqual(
        (await storage.runs.listRunsByStatus(['queued', 'running'])).map((run) => run.id),
        [b.id, a.id],
      );
      assert.deepEqual(await storage.runs.listRunsByStatus([]), []);
      assert.deepEqual((await storage.runs.listRunsByStatus(['succeeded'])).map((run) => run.id), [c.id]);
    });

    test('counts runs by status across users (the runs-by-status metric)', async () => {
      const before = await storage.runs.countRunsByStatus();
      for (const run of [newRun(alice, { status: 'queued' }), newRun(bob, { status: 'queued' }), newRun(alice, { status: 'failed' })]) {
        await storage.runs.createRun(run);
      }
      const after = await storage.runs.countRunsByStatus();
      assert.equal((after.queued ?? 0) - (before.queued ?? 0), 2);
      assert.equal((after.failed ?? 0) - (before.failed ?? 0), 1);
      assert.equal(after.canceled ?? 0, before.canceled ?? 0);
      for (const count of Object.values(after)) assert.equal(typeof count, 'number');
    });

    test('a run outlives its connection', async () => {
      const connection = newConnection(alice);
      await storage.connections.createConnection(connection, []);
      const run = newRun(alice, { connectionId: connection.id });
      await storage.runs.createRun(run);
      assert.equal(await storage.connections.deleteConnection(alice, connection.id), true);
      assert.deepEqual(await storage.runs.getRun(alice, run.id), run);
    });

    test('log entries are numbered from 1 and read back oldest first, after a seq', async () => {
      const run = newRun(alice);
      await storage.runs.createRun(run);
      assert.deepEqual(await storage.runs.readLog(run.id), []);
      await storage.runs.appendLog(run.id, [entry('one'), entry('two', 'stderr')]);
      await storage.runs.appendLog(run.id, []);
      await storage.runs.appendLog(run.id, [entry('three', 'system')]);
      const log = await storage.runs.readLog(run.id);
      assert.deepEqual(
        log.map((e) => [e.seq, e.stream, e.text]),
        [
          [1, 'stdout', 'one'],
          [2, 'stderr', 'two'],
          [3, 'system', 'three'],
        ],
      );
      assert.deepEqual((await storage.runs.readLog(run.id, 2)).map((e) => e.text), ['three']);
      assert.deepEqual(await storage.runs.readLog(run.id, 3), []);
    });

    test('logs of different runs are numbered separately', async () => {
      const first = newRun(alice);
      const second = newRun(alice);
      await storage.runs.createRun(first);
      await storage.runs.createRun(second);
      await storage.runs.appendLog(first.id, [entry('a'), entry('b')]);
      await storage.runs.appendLog(second.id, [entry('c')]);
      assert.deepEqual((await storage.runs.readLog(second.id)).map((e) => e.seq), [1]);
    });

    test('a log keeps any text; NUL becomes U+FFFD on both databases', async () => {
      const run = newRun(alice);
      await storage.runs.createRun(run);
      const text = 'line\r\n\x1b[32mgreen\x1b[0m ✓ 🚀 \'quote\' "dq" \\ back';
      await storage.runs.appendLog(run.id, [entry(text), entry('bin\0ary')]);
      assert.deepEqual((await storage.runs.readLog(run.id)).map((e) => e.text), [text, 'bin\uFFFDary']);
    });

    test('a large append in one call is stored whole', async () => {
      const run = newRun(alice);
      await storage.runs.createRun(run);
      await storage.runs.appendLog(run.id, Array.from({ length: 2500 }, (_, i) => entry(`w:${i}`)));
      assertConsecutive(await storage.runs.readLog(run.id), ['w'], 2500);
    });

    test('appending to a missing run is a NotFoundError and writes nothing', async () => {
      const id = randomUUID();
      await assert.rejects(storage.runs.appendLog(id, [entry('x')]), NotFoundError);
      assert.deepEqual(await storage.runs.readLog(id), []);
    });

    test('5 concurrent appenders × 20 entries in one process get seqs 1..100', async () => {
      const run = newRun(alice);
      await storage.runs.createRun(run);
      const writers = ['w0', 'w1', 'w2', 'w3', 'w4'];
      await Promise.all(
        writers.map(async (writer) => {
          for (let i = 0; i < 20; i++) await storage.runs.appendLog(run.id, [entry(`${writer}:${i}`)]);
        }),
      );
      assertConsecutive(await storage.runs.readLog(run.id), writers, 20);
    });

    // 200 each rather than 20: with 20, the processes' appends barely overlapped and SQLite's deferred BEGIN (a
    // broken lock) still passed; with 200 it fails every time while BEGIN IMMEDIATE passes.
    test('5 processes × 200 entries appending at once get seqs 1..1000', async () => {
      const target = await db.createTarget();
      try {
        const shared = await openStorage(target.options);
        const user = await shared.users.createUser(newUser());
        const run = newRun(user.id);
        await shared.runs.createRun(run);
        try {
          const writers = ['p0', 'p1', 'p2', 'p3', 'p4'];
          await Promise.all(writers.map((writer) => runWorker(target.options, run.id, writer, PER_PROCESS)));
          assertConsecutive(await shared.runs.readLog(run.id), writers, PER_PROCESS);
        } finally {
          await shared.close();
        }
      } finally {
        await target.dispose();
      }
    });
  });
}
