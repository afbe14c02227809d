import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { UpstreamError, type OutboundPolicy } from '../../src/core/index.ts';
import { createGitLabOAuthClient, GitLabHttp, type ResolveAll } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { lanAddress } from '../support/host-address.ts';
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

  // Each of these used to be judged public: a connection was attempted, and for unrouted ranges the caller
  // waited for the connect timeout. Now each is refused before a socket exists.
  for (const [name, host, reason] of [
    ['NAT64 of the metadata address', '[64:ff9b::a9fe:a9fe]', /\(NAT64 169\.254\.169\.254\), a cloud metadata address, which forgelink never contacts\.$/],
    // The operator allows 127.0.0.0/8 here, which covers ::ffff:127.0.0.1 but not the deprecated IPv4-compatible form.
    ['IPv4-compatible loopback', '[::7f00:1]', /\(IPv4-compatible 127\.0\.0\.1\), a loopback address\. The operator can allow it/],
    ['6to4 of a private address', '[2002:a00:5::1]', /\(6to4 10\.0\.0\.5\), a private address\. The operator can allow it/],
    ['Teredo of the metadata address', '[2001:0:4136:e378:8000:63bf:5601:5601]', /\(Teredo client 169\.254\.169\.254\), a cloud metadata address/],
    ['documentation range 198.51.100.0/24', '198.51.100.7', /a reserved special-purpose address\. The operator can allow it/],
    ['reserved 240.0.0.0/4', '240.0.0.1', /a reserved special-purpose address/],
    ['benchmarking 198.18.0.0/15', '198.18.0.1', /a reserved special-purpose address/],
    ['IPv6 documentation 2001:db8::/32', '[2001:db8::1]', /a reserved special-purpose address/],
    ['multicast', '224.0.0.251', /a multicast address/],
    ['IPv6 multicast', '[ff02::1]', /a multicast address/],
    ['unique-local', '[fd12::1]', /a private address/],
    ['site-local', '[fec0::1]', /a private address/],
    ["this host's LAN address", lanAddress(), /one of this host's own addresses\. The operator can allow it with FORGELINK_OUTBOUND_ALLOW\.$/],
  ] as const) {
    test(`${name} (${host}) is refused at once, without a socket`, async () => {
      const sockets = await socketsCreatedDuring(() =>
        assert.rejects(getUser(`http://${host}:${port}`, LOOPBACK_ALLOWED), rejectsWith('blocked_address', (error) => assert.match(error.message, reason))),
      );
      assert.equal(sockets, 0);
    });
  }

  test('a name resolving to such an address is refused on the resolved address', async () => {
    const start = gl.requests.length;
    for (const address of ['::ffff:0:a9fe:a9fe', '64:ff9b:1::a00:5', '203.0.113.9', '100::1', lanAddress()]) {
      await assert.rejects(
        getUser(`http://gitlab.example.test:${port}`, LOOPBACK_ALLOWED, { resolveAll: resolvingTo(address) }),
        rejectsWith('blocked_address', (error) => assert.ok(error.message.startsWith(`gitlab.example.test resolves to ${address}`), error.message)),
      );
    }
    assert.equal(gl.requests.length, start);
  });

  test('an IPv6 form of an allowed IPv4 address is allowed, and connects to the address that was checked', async () => {
    const resolved: string[] = [];
    const user = await getUser(`http://gitlab.mapped.test:${port}`, LOOPBACK_ALLOWED, {
      token,
      resolveAll: async (hostname) => {
        resolved.push(hostname);
        return [{ address: '::ffff:127.0.0.1', family: 6 }];
      },
    });
    assert.equal(user.username, 'dana');
    assert.deepEqual(resolved, ['gitlab.mapped.test'], 'resolved once');
    assert.equal((await getUser(`http://[::ffff:7f00:1]:${port}`, LOOPBACK_ALLOWED, { token })).username, 'dana');
  });

  test('the OAuth token exchange and refresh follow the same policy', async () => {
    const start = gl.requests.length;
    const client = createGitLabOAuthClient({
      app: { baseUrl: `http://gitlab.oauth.test:${port}`, clientId: 'app', clientSecret: null, caPem: null },
      redirectUri: 'http://127.0.0.1:1/integrations/gitlab/callback',
      scopes: ['api'],
      policy: LOOPBACK_ALLOWED,
      clock: { now: () => new Date() },
      resolveAll: resolvingTo('2002:a9fe:a9fe::1'),
    });
    try {
      // The refusal comes from the lookup, before net.connect has an address to connect to (the socket object
      // exists, but no connection is attempted): the request count of the fake below proves nothing arrived.
      await assert.rejects(
        client.refresh('refresh-token'),
        rejectsWith('blocked_address', (error) => assert.match(error.message, /gitlab\.oauth\.test resolves to 2002:a9fe:a9fe::1 \(6to4 169\.254\.169\.254\)/)),
      );
      const callback = client.validateCallback(new URLSearchParams({ code: 'c', state: 's' }), 's');
      assert.ok(callback.ok);
      await assert.rejects(client.exchangeCode(callback.parameters, 'verifier'), rejectsWith('blocked_address'));
    } finally {
      await client.close();
    }
    assert.equal(gl.requests.length, start);
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
