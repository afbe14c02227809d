import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { UpstreamError, type OutboundPolicy } from '../../src/core/index.ts';
import { GitLabHttp, type ResolveAll } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { closedPort, LOOPBACK_ALLOWED, noSleepExpected, recordingSleep } from './helpers.ts';

const User = z.object({ username: z.string() });

function rejectsWith(reason: UpstreamError['reason'], check: (error: UpstreamError) => void = () => {}) {
  return (error: unknown) => {
    assert.ok(error instanceof UpstreamError, `expected UpstreamError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    check(error);
    return true;
  };
}

/** Counts sockets Node's net module creates while `run` runs. */
async function socketsCreatedDuring(run: () => Promise<unknown>): Promise<number> {
  let count = 0;
  const onSocket = () => {
    count += 1;
  };
  diagnostics.subscribe('net.client.socket', onSocket);
  try {
    await run();
  } finally {
    diagnostics.unsubscribe('net.client.socket', onSocket);
  }
  return count;
}

function resolvingTo(...addresses: string[]): ResolveAll {
  return async () => addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
}

async function getUser(baseUrl: string, policy: OutboundPolicy, extra: Partial<Parameters<typeof GitLabHttp.create>[0]> = {}) {
  const http = GitLabHttp.create({ baseUrl, policy, sleep: noSleepExpected, token: 'glpat-policy', ...extra });
  try {
    return await http.get('/user', User);
  } finally {
    await http.close();
  }
}

describe('outbound-address policy', () => {
  let gl: FakeGitLab;
  let token: string;
  let port: string;

  before(async () => {
    gl = await startFakeGitLab();
    token = gl.addToken(gl.addUser({ username: 'dana' }).id, { scopes: ['read_user'], expiresAt: '2099-01-01' });
    port = new URL(gl.baseUrl).port;
  });
  after(() => gl.close());

  test('169.254.169.254 is refused without any connection attempt, whatever the operator allows', async () => {
    const sockets = await socketsCreatedDuring(() =>
      assert.rejects(
        getUser('http://169.254.169.254', { allow: ['169.254.0.0/16', '0.0.0.0/0'] }),
        rejectsWith('blocked_address', (error) => assert.match(error.message, /cloud metadata/)),
      ),
    );
    assert.equal(sockets, 0);
    // The counter does see the sockets undici opens.
    assert.equal(await socketsCreatedDuring(() => getUser(gl.baseUrl, LOOPBACK_ALLOWED, { token })), 1);
  });

  test('a name resolving to the metadata address is refused on the resolved address', async () => {
    const start = gl.requests.length;
    await assert.rejects(
      getUser(`http://gitlab.example.test:${port}`, LOOPBACK_ALLOWED, { resolveAll: resolvingTo('169.254.169.254') }),
      rejectsWith('blocked_address', (error) => assert.match(error.message, /gitlab\.example\.test resolves to 169\.254\.169\.254/)),
    );
    assert.equal(gl.requests.length, start);
  });

  test('localhost is refused unless the operator allows 127.0.0.0/8', async () => {
    const start = gl.requests.length;
    await assert.rejects(
      getUser(`http://localhost:${port}`, { allow: [] }, { token }),
      rejectsWith('blocked_address', (error) => assert.match(error.message, /loopback.*FORGELINK_OUTBOUND_ALLOW/)),
    );
    assert.equal(gl.requests.length, start, 'no request reached the server');
    assert.equal((await getUser(`http://localhost:${port}`, { allow: ['127.0.0.0/8'] }, { token })).username, 'dana');
    assert.equal(gl.requests.length, start + 1);
  });

  test('a name allowed by the operator by host name passes', async () => {
    const user = await getUser(`http://gitlab.internal.test:${port}`, { allow: ['gitlab.internal.test'] }, {
      token,
      resolveAll: resolvingTo('127.0.0.1'),
    });
    assert.equal(user.username, 'dana');
  });

  test('of several resolved addresses only allowed ones are used', async () => {
    const user = await getUser(`http://mixed.example.test:${port}`, LOOPBACK_ALLOWED, {
      token,
      resolveAll: resolvingTo('169.254.169.254', '127.0.0.1'),
    });
    assert.equal(user.username, 'dana');
  });

  test('private ranges are refused: literal and resolved', async () => {
    const sockets = await socketsCreatedDuring(() =>
      assert.rejects(getUser('http://10.1.2.3', LOOPBACK_ALLOWED), rejectsWith('blocked_address', (e) => assert.match(e.message, /private/))),
    );
    assert.equal(sockets, 0);
    await assert.rejects(
      getUser('https://gitlab.corp.test', LOOPBACK_ALLOWED, { resolveAll: resolvingTo('192.168.1.10') }),
      rejectsWith('blocked_address'),
    );
  });

  test('a port nobody listens on → unreachable, after bounded retries', async () => {
    const { sleep, waits } = recordingSleep();
    await assert.rejects(
      getUser(`http://127.0.0.1:${await closedPort()}`, LOOPBACK_ALLOWED, { sleep, maxRetries: 2 }),
      rejectsWith('unreachable', (error) => assert.match(error.message, /refused the connection/)),
    );
    assert.equal(waits.length, 2);
  });

  test('a name that does not resolve → unreachable, not retried', async () => {
    const notFound: ResolveAll = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), { code: 'ENOTFOUND' });
    };
    await assert.rejects(
      getUser('https://nowhere.invalid', LOOPBACK_ALLOWED, { resolveAll: notFound }),
      rejectsWith('unreachable', (error) => assert.match(error.message, /Could not resolve nowhere\.invalid/)),
    );
  });
});
