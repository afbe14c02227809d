import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { createOAuthFlow } from '../../src/connections/index.ts';
import { createTokenProvider } from '../../src/tokens/index.ts';
import { newId, UpstreamError, type Connection, type GitLabOAuthClients, type TokenProvider } from '../../src/core/index.ts';
import { createGitLabOAuthClients, gitlabClientFactory, oauthRedirectUri, type OAuthApplication } from '../../src/gitlab/index.ts';
import { openStorage, type Storage } from '../../src/storage/index.ts';
import { createVault } from '../../src/vault/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { databases, type TestTarget } from '../support/databases.ts';
import { TEST_PUBLIC_URL } from '../support/forgelink.ts';
import { newUser } from '../support/records.ts';

const WORKER = fileURLToPath(new URL('./refresh-worker.ts', import.meta.url));
const policy = { allow: ['127.0.0.0/8'] };
const clock = { now: () => new Date() };
/**
 * Lifetime of a token the test then expires at GitLab: long enough to connect on a busy machine, short enough to be
 * inside the provider's refresh margin (two minutes) from the start.
 */
const SHORT_LIFETIME_SECONDS = 60;

/** One simulated forgelink process: its own storage handle (its own database connections), OAuth clients and provider. */
type Process = { storage: Storage; oauth: GitLabOAuthClients; tokens: TokenProvider };

for (const db of databases()) {
  describe(`OAuth token refresh across processes on ${db.name}`, () => {
    const key = randomBytes(32);
    const vault = createVault({ keyring: { versions: [{ id: 'k1', key }] } });
    let gitlab: FakeGitLab;
    let app: OAuthApplication;
    let target: TestTarget;
    let botId: number;
    const processes: Process[] = [];
    let dispatcher: Agent;

    async function startProcess(): Promise<Process> {
      const storage = await openStorage(target.options);
      const oauth = createGitLabOAuthClients({ apps: [app], publicUrl: TEST_PUBLIC_URL, scopes: ['api', 'read_user'], policy, clock });
      const tokens = createTokenProvider({ store: storage.connections, vault, oauth, clock });
      const started = { storage, oauth, tokens };
      processes.push(started);
      return started;
    }

    before(async () => {
      gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
      botId = gitlab.addUser({ username: 'bot', name: 'Bot' }).id;
      gitlab.oauthAutoApprove(botId);
      const registered = gitlab.addOAuthApplication({ redirectUri: oauthRedirectUri(TEST_PUBLIC_URL), scopes: ['api', 'read_user'] });
      app = { baseUrl: gitlab.baseUrl, clientId: registered.clientId, clientSecret: registered.clientSecret, caPem: gitlab.caPem };
      target = await db.createTarget();
      dispatcher = new Agent({ connect: { ca: gitlab.caPem ?? undefined } });
    });
    after(async () => {
      for (const started of processes) {
        await started.oauth.close();
        await started.storage.close();
      }
      await dispatcher.close();
      await target.dispose();
      await gitlab.close();
    });

    /** A user with a fresh OAuth connection whose access token lives `lifetimeSeconds`; later tokens live two hours. */
    async function connect(lifetimeSeconds: number): Promise<Connection> {
      const [first] = processes;
      assert.ok(first);
      const user = newUser();
      await first.storage.users.createUser(user);
      const flow = createOAuthFlow({
        states: first.storage.oauthStates,
        store: first.storage.connections,
        vault,
        oauth: first.oauth,
        gitlab: gitlabClientFactory(policy),
        clock,
        newId,
        allowHttp: false,
      });
      gitlab.setOAuthTokenLifetime(lifetimeSeconds);
      try {
        const { authorizeUrl } = await flow.start({ userId: user.id, sessionId: 's', baseUrl: gitlab.baseUrl });
        const response = await fetch(authorizeUrl, { redirect: 'manual', dispatcher });
        const query = Object.fromEntries(new URL(response.headers.get('location') ?? '').searchParams);
        const view = await flow.finish({ userId: user.id, sessionId: 's', query });
        const connection = await first.storage.connections.getConnection(user.id, view.id);
        assert.ok(connection);
        return connection;
      } finally {
        gitlab.setOAuthTokenLifetime(7200);
      }
    }

    async function works(token: string): Promise<boolean> {
      const response = await fetch(`${gitlab.baseUrl}/api/v4/user`, { headers: { authorization: `Bearer ${token}` }, dispatcher });
      await response.arrayBuffer();
      return response.status === 200;
    }

    async function storedAccessToken(connection: Connection): Promise<string> {
      const secret = await processes[0]?.storage.connections.getSecret(connection.userId, connection.id, 'token');
      assert.ok(secret);
      return vault.open(secret.sealed, { ownerId: secret.ownerId, recordId: secret.connectionId, purpose: 'token' });
    }

    test('concurrent callers in three processes with an expired token: one refresh at GitLab, one working token for all', async () => {
      await startProcess();
      await startProcess();
      await startProcess();
      const connection = await connect(SHORT_LIFETIME_SECONDS);
      const expired = await storedAccessToken(connection);
      gitlab.expireOAuthToken(expired);
      assert.equal(await works(expired), false, 'the first token has expired at GitLab');
      const refreshes = gitlab.oauthStats().refreshes;

      const calls = processes.flatMap((started) => Array.from({ length: 4 }, () => started.tokens.currentToken(connection)));
      const handed = await Promise.all(calls);
      assert.equal(gitlab.oauthStats().refreshes - refreshes, 1, 'exactly one refresh reached GitLab');
      assert.equal(new Set(handed).size, 1, 'every caller got the same token');
      const [fresh] = handed;
      assert.ok(fresh !== undefined && fresh !== expired);
      assert.equal(await works(fresh), true);
      assert.equal(await storedAccessToken(connection), fresh, 'the new token was stored before it was handed out');

      const again = await Promise.all(processes.map((started) => started.tokens.currentToken(connection)));
      assert.deepEqual(again, processes.map(() => fresh), 'a fresh token is not refreshed again');
      assert.equal(gitlab.oauthStats().refreshes - refreshes, 1);
      const row = await processes[0]?.storage.connections.getConnection(connection.userId, connection.id);
      assert.ok(row?.tokenExpiresAt && Date.parse(row.tokenExpiresAt) > Date.now() + 3600_000);
    });

    test('real child processes refreshing at once: one refresh, the same token everywhere', async () => {
      const connection = await connect(SHORT_LIFETIME_SECONDS);
      gitlab.expireOAuthToken(await storedAccessToken(connection));
      const refreshes = gitlab.oauthStats().refreshes;
      const settings = JSON.stringify({
        storage: target.options,
        app,
        publicUrl: TEST_PUBLIC_URL,
        key: key.toString('base64'),
        userId: connection.userId,
        connectionId: connection.id,
      });
      const children = Array.from({ length: 4 }, () => {
        const child = spawn(process.execPath, [WORKER], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
        const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
        child.stdin.write(`${settings}\n`);
        return { child, lines, exited, stderr: () => stderr };
      });
      try {
        for (const { lines, stderr } of children) assert.equal((await lines.next()).value, 'ready', stderr());
        for (const { child } of children) child.stdin.write('go\n');
        const tokens: string[] = [];
        for (const { lines, stderr } of children) {
          const line = String((await lines.next()).value ?? '');
          assert.match(line, /^token /, stderr());
          tokens.push(line.slice('token '.length));
        }
        for (const { exited, stderr } of children) assert.equal(await exited, 0, stderr());
        assert.equal(gitlab.oauthStats().refreshes - refreshes, 1, 'exactly one refresh reached GitLab');
        assert.equal(new Set(tokens).size, 1);
        assert.equal(await works(tokens[0] ?? ''), true);
        assert.equal(await storedAccessToken(connection), tokens[0]);
      } finally {
        for (const { child } of children) if (child.exitCode === null) child.kill('SIGKILL');
      }
    });

    test('a token GitLab refuses (401) before its recorded expiry is refreshed once, whoever hits it', async () => {
      const connection = await connect(7200);
      const stale = await storedAccessToken(connection);
      gitlab.expireOAuthToken(stale);
      assert.equal(await works(stale), false);
      const refreshes = gitlab.oauthStats().refreshes;
      const api = gitlabClientFactory(policy);
      const users = await Promise.all(
        processes.flatMap((started) =>
          [1, 2].map(() =>
            started.tokens.withToken(connection, async (token) => {
              const client = api({ baseUrl: gitlab.baseUrl, caPem: gitlab.caPem }, { token, kind: 'oauth' });
              try {
                return await client.currentUser();
              } finally {
                await client.close();
              }
            }),
          ),
        ),
      );
      assert.ok(users.every((user) => user.id === botId));
      assert.equal(gitlab.oauthStats().refreshes - refreshes, 1);
      assert.equal(await works(await storedAccessToken(connection)), true);
    });

    test('a refresh GitLab refuses (invalid_grant) marks the connection revoked with a reason to reconnect', async () => {
      const connection = await connect(7200);
      const token = await storedAccessToken(connection);
      gitlab.revokeOAuthToken(token);
      const [first] = processes;
      assert.ok(first);
      await assert.rejects(first.tokens.refresh(connection, token), (error: unknown) => {
        assert.ok(error instanceof UpstreamError);
        assert.equal(error.reason, 'token_revoked');
        assert.match(error.message, /Reconnect/);
        return true;
      });
      const marked = await first.storage.connections.getConnection(connection.userId, connection.id);
      assert.equal(marked?.status, 'revoked');
      assert.match(marked?.statusReason ?? '', /invalid_grant/);
      // The stored pair is untouched: nothing half-written.
      assert.equal(await storedAccessToken(connection), token);
    });

    test('a disconnected connection has nothing to refresh', async () => {
      const connection = await connect(7200);
      const [first] = processes;
      assert.ok(first);
      await first.storage.connections.deleteConnection(connection.userId, connection.id);
      await assert.rejects(first.tokens.refresh(connection, 'stale-token-value'), { code: 'connection_not_found' });
    });
  });
}
