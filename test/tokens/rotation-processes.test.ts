import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { createRotator, createTokenProvider, type Rotator, type RotationStep } from '../../src/tokens/index.ts';
import type { Connection, TokenProvider } from '../../src/core/index.ts';
import { createGitLabOAuthClients, gitlabClientFactory } from '../../src/gitlab/index.ts';
import { openStorage, type Storage } from '../../src/storage/index.ts';
import { bindingForSecret, createVault } from '../../src/vault/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { databases, type TestTarget } from '../support/databases.ts';
import { newConnection, newUser } from '../support/records.ts';

const WORKER = fileURLToPath(new URL('./rotation-worker.ts', import.meta.url));
const policy = { allow: ['127.0.0.0/8'] };
const clock = { now: () => new Date() };

function daysFromToday(days: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + days * 86_400_000).toISOString().slice(0, 10);
}

/** One simulated forgelink process: its own storage handle (its own database connections), rotator and token provider. */
type Process = { storage: Storage; rotator: Rotator; tokens: TokenProvider };

type Child = { lines: AsyncIterator<string>; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; stderr: () => string; go(): void; kill(): void };

for (const db of databases()) {
  describe(`token rotation across processes on ${db.name}`, () => {
    const key = randomBytes(32);
    const vault = createVault({ keyring: { versions: [{ id: 'k1', key }] } });
    let gitlab: FakeGitLab;
    let target: TestTarget;
    let botId: number;
    let dispatcher: Agent;
    const processes: Process[] = [];

    /** A process whose rotator presumes an unanswered intent settled after `settleMs` (the crash tests: its writer is dead). */
    async function startProcess(settleMs?: number): Promise<Process> {
      const storage = await openStorage(target.options);
      const rotator = createRotator({
        store: storage.connections,
        vault,
        gitlab: gitlabClientFactory(policy, { maxRetries: 1 }),
        clock,
        audit: storage.audit,
        ...(settleMs === undefined ? {} : { settleMs }),
      });
      const oauth = createGitLabOAuthClients({ apps: [], publicUrl: 'http://127.0.0.1:8080', scopes: ['api'], policy, clock });
      await oauth.close();
      const started = { storage, rotator, tokens: createTokenProvider({ store: storage.connections, vault, oauth, clock, rotator }) };
      processes.push(started);
      return started;
    }

    before(async () => {
      gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
      botId = gitlab.addUser({ username: 'bot', name: 'Bot' }).id;
      target = await db.createTarget();
      dispatcher = new Agent({ connect: { ca: gitlab.caPem ?? undefined } });
    });
    after(async () => {
      for (const started of processes) await started.storage.close();
      await dispatcher.close();
      await target.dispose();
      await gitlab.close();
    });

    /** A user with a personal access token connection opted in to rotation, its token expiring in `days`. */
    async function connect(storage: Storage, days = 2): Promise<{ connection: Connection; token: string }> {
      const user = newUser();
      await storage.users.createUser(user);
      const token = gitlab.addToken(botId, { scopes: ['api'], expiresAt: daysFromToday(days), name: 'forgelink' });
      const connection = newConnection(user.id, {
        baseUrl: gitlab.baseUrl,
        host: new URL(gitlab.baseUrl).host,
        caPem: gitlab.caPem,
        instanceVersion: '18.1.1-ee',
        scopes: ['api'],
        expiresAt: daysFromToday(days),
        rotation: { enabled: true, lifetimeDays: 30, thresholdDays: 7, lastRotatedAt: null },
      });
      const secret = { id: `sec-${connection.id}`, ownerId: user.id, connectionId: connection.id, purpose: 'token' };
      await storage.connections.createConnection(connection, [{ ...secret, sealed: vault.seal(token, bindingForSecret(secret)) }]);
      return { connection, token };
    }

    async function stored(storage: Storage, connection: Connection): Promise<string> {
      const secret = await storage.connections.getSecret(connection.userId, connection.id, 'token');
      assert.ok(secret);
      return vault.open(secret.sealed, bindingForSecret(secret));
    }

    async function works(token: string): Promise<boolean> {
      const response = await fetch(`${gitlab.baseUrl}/api/v4/personal_access_tokens/self`, { headers: { 'private-token': token }, dispatcher });
      await response.arrayBuffer();
      return response.status === 200;
    }

    function spawnWorker(connection: Connection, mode: 'token' | 'rotate', crashAt?: RotationStep): Child {
      const env = { ...process.env, ...(crashAt === undefined ? {} : { FORGELINK_TEST_ROTATION_CRASH_AT: crashAt }) };
      const child = spawn(process.execPath, [WORKER], { stdio: ['pipe', 'pipe', 'pipe'], env });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
      child.stdin.write(`${JSON.stringify({ storage: target.options, key: key.toString('base64'), userId: connection.userId, connectionId: connection.id, mode })}\n`);
      return {
        lines: createInterface({ input: child.stdout })[Symbol.asyncIterator](),
        exited,
        stderr: () => stderr,
        go: () => child.stdin.write('go\n'),
        kill: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        },
      };
    }

    test('three storage handles, four callers each, a due token: one rotation at GitLab and the same new token for all', async () => {
      const handles = [await startProcess(), await startProcess(), await startProcess()];
      const { connection, token: old } = await connect(handles[0]!.storage);
      const before = gitlab.tokenStats();
      const handed = await Promise.all(handles.flatMap((handle) => Array.from({ length: 4 }, () => handle.tokens.currentToken(connection))));
      assert.equal(gitlab.rotationCount() - before.rotations, 1, 'exactly one rotation reached GitLab');
      assert.equal(new Set(handed).size, 1, 'every caller got the same token');
      const [fresh] = handed;
      assert.ok(fresh !== undefined && fresh !== old);
      assert.equal(await works(fresh), true);
      assert.equal(await works(old), false);
      assert.equal(await stored(handles[1]!.storage, connection), fresh, 'stored before it was handed out');
      assert.equal(gitlab.tokenStats().familyRevocations, before.familyRevocations);
      assert.equal((await handles[2]!.storage.connections.getConnection(connection.userId, connection.id))?.expiresAt, daysFromToday(30));
      const audit = await handles[0]!.storage.audit.list({ ownerId: connection.userId, connectionId: connection.id });
      assert.equal(audit.filter((entry) => entry.action === 'token.rotated').length, 1);

      // rotateIfDue from every handle at once, now that the token is fresh: nothing.
      const outcomes = await Promise.all(handles.map((handle) => handle.rotator.rotateIfDue(connection)));
      assert.deepEqual(outcomes.map((outcome) => outcome.status), ['current', 'current', 'current']);
      assert.equal(gitlab.rotationCount() - before.rotations, 1);
    });

    test('four real child processes asking for a due token at once: one rotation, the same token everywhere', async () => {
      const [parent] = processes;
      assert.ok(parent);
      const { connection, token: old } = await connect(parent.storage);
      const before = gitlab.rotationCount();
      const children = Array.from({ length: 4 }, () => spawnWorker(connection, 'token'));
      try {
        for (const child of children) assert.equal((await child.lines.next()).value, 'ready', child.stderr());
        for (const child of children) child.go();
        const tokens: string[] = [];
        for (const child of children) {
          const line = String((await child.lines.next()).value ?? '');
          assert.match(line, /^token /, child.stderr());
          tokens.push(line.slice('token '.length));
        }
        for (const child of children) assert.deepEqual(await child.exited, { code: 0, signal: null }, child.stderr());
        assert.equal(gitlab.rotationCount() - before, 1, 'exactly one rotation reached GitLab');
        assert.equal(new Set(tokens).size, 1);
        assert.notEqual(tokens[0], old);
        assert.equal(await works(tokens[0] ?? ''), true);
        assert.equal(await stored(parent.storage, connection), tokens[0]);
      } finally {
        for (const child of children) child.kill();
      }
    });

    /** Runs a child that rotates and dies by SIGKILL right after `step`; resolves once it is dead. */
    async function crashAfter(connection: Connection, step: RotationStep): Promise<void> {
      const child = spawnWorker(connection, 'rotate', step);
      try {
        assert.equal((await child.lines.next()).value, 'ready', child.stderr());
        child.go();
        const exit = await child.exited;
        assert.deepEqual(exit, { code: null, signal: 'SIGKILL' }, `the worker was to die after ${step}: ${child.stderr()}`);
      } finally {
        child.kill();
      }
    }

    test('killed between GitLab\'s answer and the commit of the new token: recovery completes the rotation, no family revocation', async () => {
      const parent = await startProcess(0);
      const { connection, token: old } = await connect(parent.storage);
      const before = gitlab.tokenStats();
      await crashAfter(connection, 'answer-recorded');

      // The state the crash left: GitLab rotated; we hold its answer, sealed, and still the old token as the connection's.
      assert.equal(gitlab.rotationCount() - before.rotations, 1);
      const [, successor] = gitlab.tokenFamily(old);
      assert.ok(successor !== undefined && !successor.revoked);
      const [pending] = (await parent.storage.connections.listRotationIntents()).filter((intent) => intent.connectionId === connection.id);
      assert.ok(pending?.answer);
      assert.ok(!JSON.stringify(pending).includes(successor.token), 'the answer is stored sealed');
      assert.equal(await stored(parent.storage, connection), old);

      const recovered = await parent.rotator.recoverPending();
      assert.deepEqual(recovered.filter((r) => r.connectionId === connection.id), [{ connectionId: connection.id, status: 'rotated' }]);
      const token = await parent.tokens.currentToken(connection);
      assert.equal(token, successor.token, 'the connection works with the new token');
      assert.equal(await works(token), true);
      assert.equal(await works(old), false);
      assert.deepEqual(gitlab.tokenStats(), { rotations: before.rotations + 1, familyRevocations: before.familyRevocations });
      const row = await parent.storage.connections.getConnection(connection.userId, connection.id);
      assert.equal(row?.expiresAt, daysFromToday(30));
      assert.equal(row?.status, 'active');
      const audit = await parent.storage.audit.list({ ownerId: connection.userId, connectionId: connection.id });
      assert.deepEqual(audit.filter((entry) => entry.action === 'token.rotated').map((entry) => entry.details.recovered), [true]);
      assert.equal((await parent.rotator.rotateIfDue(connection)).status, 'current');
      assert.equal(gitlab.rotationCount() - before.rotations, 1);
    });

    test('killed before GitLab was asked: the old token keeps working, the intent is dropped, and the next rotation works', async () => {
      const parent = await startProcess(0);
      const { connection, token: old } = await connect(parent.storage);
      const before = gitlab.tokenStats();
      await crashAfter(connection, 'claimed');
      assert.equal(gitlab.rotationCount(), before.rotations, 'GitLab never saw the request');
      assert.equal((await parent.storage.connections.listRotationIntents()).filter((intent) => intent.connectionId === connection.id).length, 1);
      assert.equal(await works(old), true);

      const recovered = await parent.rotator.recoverPending();
      assert.deepEqual(recovered.filter((r) => r.connectionId === connection.id), [{ connectionId: connection.id, status: 'current' }]);
      assert.equal(await stored(parent.storage, connection), old);
      assert.equal(await works(old), true, 'the old token still works');
      assert.equal((await parent.storage.connections.getConnection(connection.userId, connection.id))?.status, 'active');
      assert.deepEqual((await parent.storage.connections.listRotationIntents()).filter((intent) => intent.connectionId === connection.id), []);

      const fresh = await parent.tokens.currentToken(connection);
      assert.notEqual(fresh, old);
      assert.equal(await works(fresh), true);
      assert.deepEqual(gitlab.tokenStats(), { rotations: before.rotations + 1, familyRevocations: before.familyRevocations });
    });

    test('killed after GitLab answered but before the answer was stored (the window left): the connection is revoked with the reason, never rotated again', async () => {
      const parent = await startProcess(0);
      const { connection, token: old } = await connect(parent.storage);
      const before = gitlab.tokenStats();
      await crashAfter(connection, 'answer-received');
      assert.equal(gitlab.rotationCount() - before.rotations, 1);
      const [pending] = (await parent.storage.connections.listRotationIntents()).filter((intent) => intent.connectionId === connection.id);
      assert.equal(pending?.answer, null, 'the answer died with the process');

      const recovered = await parent.rotator.recoverPending();
      assert.deepEqual(recovered.filter((r) => r.connectionId === connection.id), [{ connectionId: connection.id, status: 'lost' }]);
      const row = await parent.storage.connections.getConnection(connection.userId, connection.id);
      assert.equal(row?.status, 'revoked');
      assert.match(row?.statusReason ?? '', /reconnect/);
      assert.equal((await parent.rotator.rotateIfDue(connection)).status, 'failed');
      const manual = await parent.rotator.rotateNow(connection, { actor: 'test', reason: 'manual' });
      assert.equal(manual.status === 'failed' ? manual.error.code : manual.status, 'connection_unusable');
      assert.deepEqual(gitlab.tokenStats(), { rotations: before.rotations + 1, familyRevocations: before.familyRevocations }, 'the old token was never presented again');
      const [, successor] = gitlab.tokenFamily(old);
      assert.equal(successor?.revoked, false, 'GitLab revoked nothing of the family');
    });
  });
}
