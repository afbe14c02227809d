import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseAllowlist } from '../../src/core/allowlist.ts';
import { createEgressProxy, type EgressProxyOptions } from '../../src/sandbox/egress-proxy.ts';
import { lanAddress } from '../support/host-address.ts';
import { startConnectProxy } from '../../testing/connect-proxy/index.ts';
import { waitFor } from '../support/wait.ts';

type Upstream = { port: number; seen: { url: string; headers: IncomingHttpHeaders }[] };

async function upstream(t: TestContext): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'x-secret-hop', 'x-secret-hop': 'drop me', 'keep-alive': 'timeout=5' });
    res.end(`upstream ${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

async function proxy(t: TestContext, options: Omit<EgressProxyOptions, 'socketPath' | 'allowlist'> & { allowlist: string[] }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'fl-proxy-'));
  const socketPath = path.join(dir, 'proxy.sock');
  const { entries, errors } = parseAllowlist(options.allowlist);
  assert.deepEqual(errors, []);
  const egress = createEgressProxy({ ...options, socketPath, allowlist: entries });
  await egress.listen();
  t.after(async () => {
    await egress.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { egress, socketPath };
}

/** Sends raw bytes to the proxy; resolves with everything it answers until it closes (or `until` matches). */
function exchange(socketPath: string, request: string, until?: RegExp): Promise<{ text: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (until?.test(text)) resolve({ text, socket });
    });
    socket.on('end', () => resolve({ text, socket }));
    socket.on('error', reject);
    socket.write(request);
  });
}

const LOOPBACK = { allow: ['127.0.0.0/8'] };

test('CONNECT to an allowed origin opens a tunnel; others get 403 and are recorded', async (t) => {
  const up = await upstream(t);
  const { egress, socketPath } = await proxy(t, { allowlist: [`127.0.0.1:${up.port}`], outboundPolicy: LOOPBACK });
  const tunnel = await exchange(socketPath, `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n\r\n`, /\r\n\r\n/);
  assert.equal(tunnel.text, 'HTTP/1.1 200 Connection Established\r\n\r\n');
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    tunnel.socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('upstream GET /through')) resolve(text);
    });
    tunnel.socket.write('GET /through HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  });
  assert.match(answer, /^HTTP\/1\.1 200 OK/);
  tunnel.socket.destroy();

  const refused = await exchange(socketPath, `CONNECT 127.0.0.1:${up.port + 1} HTTP/1.1\r\n\r\n`);
  assert.match(refused.text, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(refused.text, new RegExp(`\r\n\r\nforgelink: 127\\.0\\.0\\.1:${up.port + 1} is not on this run's allowlist\\.\n$`));
  const again = await exchange(socketPath, `CONNECT 127.0.0.1:${up.port + 1} HTTP/1.1\r\n\r\n`);
  assert.match(again.text, /403/);
  assert.deepEqual(egress.record(), { allowed: [`127.0.0.1:${up.port}`], refused: [`127.0.0.1:${up.port + 1}`] });
  assert.deepEqual(up.seen.map((request) => request.url), ['/through']);
});

test('plain HTTP is forwarded without hop-by-hop headers, with Host from the URL', async (t) => {
  const up = await upstream(t);
  const { socketPath } = await proxy(t, { allowlist: [`127.0.0.1:${up.port}`], outboundPolicy: LOOPBACK });
  const { text } = await exchange(
    socketPath,
    `GET http://127.0.0.1:${up.port}/path?q=1 HTTP/1.1\r\nHost: spoofed.example\r\nProxy-Authorization: Basic c2VjcmV0\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nX-Kept: yes\r\n\r\n`,
  );
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /\r\nupstream GET \/path\?q=1\r\n/);
  assert.doesNotMatch(text, /x-secret-hop|keep-alive: timeout/i);
  const [seen] = up.seen;
  assert.equal(seen?.url, '/path?q=1');
  assert.equal(seen?.headers.host, `127.0.0.1:${up.port}`);
  assert.equal(seen?.headers['x-kept'], 'yes');
  assert.equal(seen?.headers['proxy-authorization'], undefined);
  assert.equal(seen?.headers['x-hop'], undefined);
});

test('requests that are not proxy requests get 400', async (t) => {
  const { socketPath, egress } = await proxy(t, { allowlist: ['example.com:443'], outboundPolicy: LOOPBACK });
  for (const request of ['GET / HTTP/1.1\r\nHost: example.com\r\n\r\n', 'GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n', 'CONNECT example.com HTTP/1.1\r\n\r\n']) {
    const { text } = await exchange(socketPath, request);
    assert.match(text, /^HTTP\/1\.1 400 /, request);
  }
  assert.deepEqual(egress.record(), { allowed: [], refused: [] });
});

test('names are resolved on the host and only a checked address is contacted', async (t) => {
  const up = await upstream(t);
  const resolved: string[] = [];
  const { socketPath, egress } = await proxy(t, {
    allowlist: [`rebind.test:${up.port}`, `private.test:${up.port}`, `missing.test:${up.port}`, `169.254.169.254:${up.port}`],
    outboundPolicy: LOOPBACK,
    resolve: async (host) => {
      resolved.push(host);
      if (host === 'rebind.test') return [{ address: '169.254.169.254', family: 4 }, { address: '127.0.0.1', family: 4 }];
      if (host === 'private.test') return [{ address: '10.1.2.3', family: 4 }];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    },
  });
  const rebind = await exchange(socketPath, `GET http://rebind.test:${up.port}/r HTTP/1.1\r\nHost: rebind.test\r\nConnection: close\r\n\r\n`);
  assert.match(rebind.text, /upstream GET \/r\r\n/);
  const privateAnswer = await exchange(socketPath, `CONNECT private.test:${up.port} HTTP/1.1\r\n\r\n`);
  assert.match(privateAnswer.text, /^HTTP\/1\.1 403 [^]*a private address\. The operator can allow it with FORGELINK_OUTBOUND_ALLOW\.\n$/);
  const missing = await exchange(socketPath, `CONNECT missing.test:${up.port} HTTP/1.1\r\n\r\n`);
  assert.match(missing.text, /^HTTP\/1\.1 502 [^]*missing\.test could not be resolved/);
  const metadata = await exchange(socketPath, `CONNECT 169.254.169.254:${up.port} HTTP/1.1\r\n\r\n`);
  assert.match(metadata.text, /^HTTP\/1\.1 403 [^]*cloud metadata/);
  assert.deepEqual(resolved, ['rebind.test', 'private.test', 'missing.test'], 'IP literals are not resolved');
  assert.deepEqual(egress.record(), {
    allowed: [`rebind.test:${up.port}`],
    refused: [`private.test:${up.port}`, `169.254.169.254:${up.port}`],
  });
});

test("IPv6 forms carrying IPv4, special-purpose ranges and this host's own addresses are refused at once, even on the allowlist", async (t) => {
  const lan = lanAddress();
  const answers: Record<string, string> = {
    'nat64.test': '64:ff9b::a9fe:a9fe',
    'mapped.test': '::ffff:0a00:0005',
    'sixtofour.test': '2002:c0a8:101::1',
    'teredo.test': '2001:0:4136:e378:8000:63bf:80ff:fffe',
    'docs.test': '198.51.100.20',
    'bench.test': '198.18.5.5',
    'multicast.test': 'ff02::1',
    'lan.test': lan,
  };
  const { socketPath, egress } = await proxy(t, {
    allowlist: [...Object.keys(answers).map((name) => `${name}:443`), '[64:ff9b::7f00:1]:443', '240.0.0.1:443'],
    outboundPolicy: LOOPBACK,
    resolve: async (host) => {
      const address = answers[host];
      if (address === undefined) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return [{ address, family: address.includes(':') ? 6 : 4 }];
    },
  });
  for (const [target, reason] of [
    ['nat64.test:443', 'nat64.test resolves to 64:ff9b::a9fe:a9fe (NAT64 169.254.169.254), a cloud metadata address, which forgelink never contacts.'],
    ['mapped.test:443', 'mapped.test resolves to ::ffff:0a00:0005 (IPv4-mapped 10.0.0.5), a private address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'],
    ['sixtofour.test:443', 'sixtofour.test resolves to 2002:c0a8:101::1 (6to4 192.168.1.1), a private address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'],
    ['teredo.test:443', 'teredo.test resolves to 2001:0:4136:e378:8000:63bf:80ff:fffe (Teredo client 127.0.0.1), a loopback address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'],
    ['docs.test:443', 'docs.test resolves to 198.51.100.20, a reserved special-purpose address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'],
    ['bench.test:443', 'bench.test resolves to 198.18.5.5, a reserved special-purpose address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'],
    ['multicast.test:443', 'multicast.test resolves to ff02::1, a multicast address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'],
    ['lan.test:443', `lan.test resolves to ${lan}, one of this host's own addresses. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.`],
    // The operator allows 127.0.0.0/8, which covers ::ffff:127.0.0.1 but not a NAT64 form of it.
    ['[64:ff9b::7f00:1]:443', '64:ff9b::7f00:1 resolves to 64:ff9b::7f00:1 (NAT64 127.0.0.1), a loopback address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'],
    ['240.0.0.1:443', '240.0.0.1 resolves to 240.0.0.1, a reserved special-purpose address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'],
  ] as const) {
    const { text } = await exchange(socketPath, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/, target);
    assert.ok(text.endsWith(`\r\n\r\nforgelink: ${reason}\n`), `${target}: ${text}`);
  }
  assert.deepEqual(egress.record().allowed, []);
  assert.equal(egress.record().refused.length, 10);
});

test('a name resolving to an IPv4-mapped address the operator allows is tunnelled to that checked address, resolved once', async (t) => {
  const up = await upstream(t);
  const resolved: string[] = [];
  const { socketPath } = await proxy(t, {
    allowlist: [`mapped.test:${up.port}`],
    outboundPolicy: LOOPBACK,
    resolve: async (host) => {
      resolved.push(host);
      return [{ address: '::ffff:127.0.0.1', family: 6 }];
    },
  });
  const { text } = await exchange(socketPath, `GET http://mapped.test:${up.port}/m HTTP/1.1\r\nHost: mapped.test\r\nConnection: close\r\n\r\n`);
  assert.match(text, /upstream GET \/m\r\n/);
  assert.deepEqual(resolved, ['mapped.test']);
});

test('an unreachable allowed origin gets 502', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const { socketPath } = await proxy(t, { allowlist: [`127.0.0.1:${port}`], outboundPolicy: LOOPBACK });
  assert.match((await exchange(socketPath, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`)).text, /^HTTP\/1\.1 502 [^]*could not be reached/);
  assert.match((await exchange(socketPath, `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)).text, /^HTTP\/1\.1 502 /);
});

test('concurrent tunnels are capped; close cuts open tunnels and removes the socket', async (t) => {
  const up = await upstream(t);
  const { socketPath, egress } = await proxy(t, { allowlist: [`127.0.0.1:${up.port}`], outboundPolicy: LOOPBACK, maxConcurrent: 2 });
  const connectLine = `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\n\r\n`;
  const first = await exchange(socketPath, connectLine, /\r\n\r\n/);
  const second = await exchange(socketPath, connectLine, /\r\n\r\n/);
  const third = await exchange(socketPath, connectLine);
  assert.match(third.text, /^HTTP\/1\.1 503 /);
  // The proxy frees the slot once it sees the close: until then a new tunnel is still refused.
  first.socket.destroy();
  let fourth = await exchange(socketPath, connectLine, /\r\n\r\n/);
  await waitFor('the closed tunnel to free its slot', async () => {
    if (!/^HTTP\/1\.1 503 /.test(fourth.text)) return true;
    fourth = await exchange(socketPath, connectLine, /\r\n\r\n/);
    return false;
  });
  assert.match(fourth.text, /^HTTP\/1\.1 200 /);
  const ended = new Promise((resolve) => second.socket.once('close', resolve));
  await egress.close();
  await ended;
  await assert.rejects(stat(socketPath), { code: 'ENOENT' });
});

test('at most two lookups at a time per run, each refusal logged once', async (t) => {
  const up = await upstream(t);
  let running = 0;
  let peak = 0;
  const logged: string[] = [];
  const { socketPath } = await proxy(t, {
    allowlist: [`*.slow.test:${up.port}`],
    outboundPolicy: LOOPBACK,
    logger: { debug() {}, info: (meta) => logged.push(String(meta.origin)), warn() {} },
    resolve: async () => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 30));
      running -= 1;
      return [{ address: '127.0.0.1', family: 4 }];
    },
  });
  const answers = await Promise.all(
    ['a', 'b', 'c', 'd', 'e'].map((name) => exchange(socketPath, `GET http://${name}.slow.test:${up.port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)),
  );
  for (const answer of answers) assert.match(answer.text, /^HTTP\/1\.1 200 /);
  assert.equal(peak, 2);
  await exchange(socketPath, `CONNECT other.test:1 HTTP/1.1\r\n\r\n`);
  await exchange(socketPath, `CONNECT other.test:1 HTTP/1.1\r\n\r\n`);
  assert.deepEqual(logged, ['other.test:1']);
});

test('forgelink.internal/token: answered by the proxy itself when the run has a token source, never forwarded or recorded', async (t) => {
  let calls = 0;
  const { socketPath, egress } = await proxy(t, {
    allowlist: [],
    outboundPolicy: LOOPBACK,
    internalToken: async () => {
      calls += 1;
      if (calls === 3) throw new Error('GitLab went away');
      return `fresh-token-${calls}`;
    },
  });
  const get = (target: string, method = 'GET') => exchange(socketPath, `${method} ${target} HTTP/1.1\r\nHost: forgelink.internal\r\nConnection: close\r\n\r\n`);
  const first = await get('http://forgelink.internal/token');
  assert.match(first.text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(first.text, /\r\ncache-control: no-store\r\n/i);
  assert.match(first.text, /\r\n\r\nfresh-token-1$/);
  assert.match((await get('http://forgelink.internal/token')).text, /fresh-token-2$/);
  assert.match((await get('http://forgelink.internal/token')).text, /^HTTP\/1\.1 502 /);
  assert.match((await get('http://forgelink.internal/other')).text, /^HTTP\/1\.1 404 /);
  assert.match((await get('http://forgelink.internal/token', 'POST')).text, /^HTTP\/1\.1 404 /);
  assert.match((await get('http://forgelink.internal:8080/token')).text, /^HTTP\/1\.1 403 /, 'another port is an ordinary origin');
  assert.equal(calls, 3);
  assert.deepEqual(egress.record(), { allowed: [], refused: ['forgelink.internal:8080'] });
});

test('without a token source forgelink.internal is an ordinary origin: refused', async (t) => {
  const { socketPath } = await proxy(t, { allowlist: [], outboundPolicy: LOOPBACK });
  const { text } = await exchange(socketPath, 'GET http://forgelink.internal/token HTTP/1.1\r\nHost: forgelink.internal\r\nConnection: close\r\n\r\n');
  assert.match(text, /^HTTP\/1\.1 403 /);
});

test('with an upstream proxy, tunnels and plain http requests go through it to the checked address; refused ones never reach it', async (t) => {
  const up = await upstream(t);
  const operatorProxy = await startConnectProxy();
  t.after(() => operatorProxy.close());
  const upstreamProxy = { host: '127.0.0.1', port: operatorProxy.port };
  const { socketPath } = await proxy(t, {
    allowlist: [`127.0.0.1:${up.port}`, `localhost:${up.port}`, '169.254.169.254:80'],
    outboundPolicy: { allow: ['127.0.0.0/8'], upstreamProxy },
  });
  // CONNECT by name: the proxy is asked for the address forgelink resolved and checked.
  const tunnel = await exchange(socketPath, `CONNECT localhost:${up.port} HTTP/1.1\r\nHost: localhost:${up.port}\r\n\r\n`, /\r\n\r\n/);
  assert.equal(tunnel.text, 'HTTP/1.1 200 Connection Established\r\n\r\n');
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    tunnel.socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('upstream GET /through')) resolve(text);
    });
    tunnel.socket.write(`GET /through HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  });
  assert.match(answer, /^HTTP\/1\.1 200/);
  tunnel.socket.destroy();
  // An absolute-form http:// request, forwarded inside a tunnel of the operator's proxy.
  const plain = await exchange(socketPath, `GET http://127.0.0.1:${up.port}/plain HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nConnection: close\r\n\r\n`);
  assert.match(plain.text, /^HTTP\/1\.1 200/);
  assert.match(plain.text, /upstream GET \/plain/);
  // The metadata address is refused by the policy before anything is asked of the proxy.
  const refused = await exchange(socketPath, 'CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n');
  assert.match(refused.text, /^HTTP\/1\.1 403/);
  assert.deepEqual(
    operatorProxy.tunnels.map((entry) => [entry.target, entry.ok]),
    [
      [`127.0.0.1:${up.port}`, true],
      [`127.0.0.1:${up.port}`, true],
    ],
  );
  assert.deepEqual(operatorProxy.refused, []);
});
