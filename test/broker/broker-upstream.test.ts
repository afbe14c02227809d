import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { createBroker, createRunCa, gitLabSurrogate, type BrokerRecord } from '../../src/broker/index.ts';
import { parseAllowlist } from '../../src/core/index.ts';
import { createEgressProxy, type EgressProxy } from '../../src/sandbox/index.ts';

/**
 * A brokered request whose upstream gives no answer ends with one the sandbox can read, naming the upstream, within
 * the broker's limits (not when the run's time is up), and the broker's record says what happened.
 */

/** How long a test waits for something that must happen within the short limits below; far more than they are. */
const DEADLINE_MS = 30_000;
const CONNECT_TIMEOUT_MS = 1000;
const ANSWER_TIMEOUT_MS = 1500;

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

type Answer = { status: number; text: string; ms: number };

/** An absolute-form request through the proxy's unix socket (plain http to a brokered origin). */
function viaProxy(socketPath: string, method: string, url: string, headers: Record<string, string>, body = ''): { answer: Promise<Answer>; sent: ReturnType<typeof request> } {
  const started = Date.now();
  const sent = request({ socketPath, method, path: url, headers: body === '' ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } });
  const answer = new Promise<Answer>((resolve, reject) => {
    sent.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, ms: Date.now() - started }));
    });
    sent.on('error', reject);
  });
  sent.end(body);
  return { answer, sent };
}

/** A CONNECT tunnel through the proxy, TLS inside with the run's CA, one request written as-is; the raw answer. */
async function viaTunnel(socketPath: string, origin: string, caPem: string, head: string): Promise<{ text: string; ms: number }> {
  const tunnel = await new Promise<Socket>((resolve, reject) => {
    const req = request({ socketPath, method: 'CONNECT', path: origin });
    req.on('connect', (_res, raw) => resolve(raw));
    req.on('error', reject);
    req.end();
  });
  const secure = tlsConnect({ socket: tunnel, ca: caPem, host: '127.0.0.1', checkServerIdentity: () => undefined });
  await once(secure, 'secureConnect');
  const started = Date.now();
  secure.write(head);
  let text = '';
  secure.setEncoding('utf8');
  secure.on('data', (chunk: string) => {
    text += chunk;
    // One answer with a Content-Length is all this asks for.
    const [headers = '', rest = ''] = text.split('\r\n\r\n');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? NaN);
    if (rest.length >= length) secure.end();
  });
  await once(secure, 'close');
  return { text, ms: Date.now() - started };
}

describe('a brokered request whose upstream gives no answer ends with one the sandbox can read', () => {
  let dir: string;
  let socketPath: string;
  let proxy: EgressProxy;
  let caPem: string;
  const records: BrokerRecord[] = [];
  const surrogate = gitLabSurrogate();

  // Accepts TCP and never says a word: no TLS handshake, no HTTP answer.
  let mute: TcpServer;
  let muteOrigin: string;
  const muteSockets: Socket[] = [];
  // Reads each request whole and never answers it; each request's socket is kept to see when the broker lets go.
  let silent: Server;
  let silentOrigin: string;
  const silentRequests: IncomingMessage[] = [];
  // Answers the first request on a connection (kept alive), then closes the connection when the next one arrives on it.
  let closing: Server;
  let closingOrigin: string;

  before(async () => {
    mute = createTcpServer((socket) => {
      muteSockets.push(socket);
      socket.on('error', () => {});
    });
    silent = createServer((req) => {
      silentRequests.push(req);
      req.resume();
    });
    closing = createServer((req, res) => {
      const served = (req.socket as Socket & { served?: number }).served ?? 0;
      (req.socket as Socket & { served?: number }).served = served + 1;
      req.resume();
      if (served > 0) return void req.socket.destroy();
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"id":1}');
      });
    });
    for (const server of [mute, silent, closing]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    muteOrigin = `127.0.0.1:${(mute.address() as AddressInfo).port}`;
    silentOrigin = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    closingOrigin = `127.0.0.1:${(closing.address() as AddressInfo).port}`;

    dir = await mkdtemp(path.join(tmpdir(), 'broker-upstream-'));
    socketPath = path.join(dir, 'proxy.sock');
    const ca = await createRunCa({ runId: 'upstream', validForMs: 60_000 });
    caPem = ca.certPem;
    const origins = [muteOrigin, silentOrigin, closingOrigin];
    const broker = createBroker({
      ca,
      credentials: [{ name: 'GITLAB_TOKEN', surrogate, origins, real: async () => 'glpat-REALrealREALrealREAL' }],
      // Each stands for a GitLab origin: its policy is asked (and allows everything here).
      origins: new Map(origins.map((origin) => [origin, { caPem: null, policy: true }])),
      guard: async () => ({ allow: true }),
      onRecord: (record) => records.push(record),
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      answerTimeoutMs: { api: ANSWER_TIMEOUT_MS, long: 60_000 },
    });
    proxy = createEgressProxy({
      socketPath,
      allowlist: parseAllowlist(origins).entries,
      outboundPolicy: { allow: ['127.0.0.0/8'] },
      broker,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    });
    await proxy.listen();
  });
  after(async () => {
    await proxy?.close();
    for (const socket of muteSockets) socket.destroy();
    for (const server of [mute, silent, closing]) {
      if (server === undefined) continue;
      (server as Server).closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    }
    await rm(dir, { recursive: true, force: true });
  });

  test('an upstream that accepts the connection but never completes TLS: 502 naming it, once the connect timeout is up', async () => {
    records.length = 0;
    const { text, ms } = await within(
      viaTunnel(
        socketPath,
        muteOrigin,
        caPem,
        `POST /api/v4/projects/1/issues HTTP/1.1\r\nhost: ${muteOrigin}\r\nprivate-token: ${surrogate}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 7\r\n\r\ntitle=a`,
      ),
      'the answer to a request whose upstream never completes TLS',
    );
    assert.match(text, /^HTTP\/1\.1 502 /);
    assert.ok(text.includes(`"message":"forgelink: ${muteOrigin} could not be reached (no connection within 1 s)."`), text);
    assert.ok(ms >= CONNECT_TIMEOUT_MS - 50, `answered after ${ms} ms`);
    assert.ok(muteSockets.length >= 1, 'the broker did connect');
    assert.deepEqual(
      records.map((record) => [record.method, record.target, record.allowed, record.status]),
      [['POST', `${muteOrigin}/api/v4/projects/1/issues`, true, 502]],
    );
  });

  test('an upstream that never answers: 504 naming it once the answer timeout is up; a write is said to maybe have happened', async () => {
    records.length = 0;
    const write = viaProxy(socketPath, 'POST', `http://${silentOrigin}/api/v4/projects/1/issues`, { 'private-token': surrogate, 'content-type': 'application/x-www-form-urlencoded' }, 'title=a');
    const wrote = await within(write.answer, 'the answer to a write the upstream never answers');
    assert.equal(wrote.status, 504);
    assert.deepEqual(JSON.parse(wrote.text), {
      message: `forgelink: ${silentOrigin} did not answer POST /api/v4/projects/1/issues within 1.5 s. It may have been carried out there all the same: look before sending it again.`,
    });
    assert.ok(wrote.ms >= ANSWER_TIMEOUT_MS - 50, `answered after ${wrote.ms} ms`);

    const read = viaProxy(socketPath, 'GET', `http://${silentOrigin}/api/v4/projects/1`, { 'private-token': surrogate });
    const answered = await within(read.answer, 'the answer to a read the upstream never answers');
    assert.equal(answered.status, 504);
    assert.deepEqual(JSON.parse(answered.text), { message: `forgelink: ${silentOrigin} did not answer GET /api/v4/projects/1 within 1.5 s.` });
    // Both are on record (a read only because it went unanswered), with what the sandbox was told.
    assert.deepEqual(
      records.map((record) => [record.method, record.target, record.allowed, record.status, record.message]),
      [
        ['POST', `${silentOrigin}/api/v4/projects/1/issues`, true, 504, JSON.parse(wrote.text).message],
        ['GET', `${silentOrigin}/api/v4/projects/1`, true, 504, JSON.parse(answered.text).message],
      ],
    );
  });

  test('when the sandbox gives up first, the upstream request is cut too (it does not hold a pooled connection)', async () => {
    records.length = 0;
    const before = silentRequests.length;
    const sent = viaProxy(socketPath, 'POST', `http://${silentOrigin}/api/v4/projects/1/merge_requests`, { 'private-token': surrogate, 'content-type': 'application/x-www-form-urlencoded' }, 'title=b');
    sent.answer.catch(() => {});
    const arrived = await within(
      (async () => {
        while (silentRequests.length === before) await once(silent, 'request');
        return silentRequests[before] as IncomingMessage;
      })(),
      'the request upstream',
    );
    const cut = once(arrived.socket, 'close');
    sent.sent.destroy();
    await within(cut, 'the upstream connection closing after the sandbox left');
    await within(
      (async () => {
        while (records.length === 0) await new Promise((resolve) => setImmediate(resolve));
      })(),
      'the record',
    );
    assert.deepEqual(
      records.map((record) => [record.method, record.target, record.status, record.message]),
      [['POST', `${silentOrigin}/api/v4/projects/1/merge_requests`, null, `forgelink: the sandbox closed the connection before ${silentOrigin} answered POST /api/v4/projects/1/merge_requests.`]],
    );
  });

  test('a kept-alive upstream connection closed under a new request: a prompt 502, not a wait', async () => {
    records.length = 0;
    const url = `http://${closingOrigin}/api/v4/projects/1/issues`;
    const headers = { 'private-token': surrogate, 'content-type': 'application/x-www-form-urlencoded' };
    const first = await within(viaProxy(socketPath, 'POST', url, headers, 'title=a').answer, 'the first answer');
    assert.equal(first.status, 201);
    // The broker reuses the connection; the upstream closes it as the request arrives.
    const second = await within(viaProxy(socketPath, 'POST', url, headers, 'title=b').answer, 'the second answer');
    assert.equal(second.status, 502);
    assert.match(JSON.parse(second.text).message, new RegExp(`^forgelink: ${closingOrigin} could not be reached`));
    assert.deepEqual(records.map((record) => record.status), [201, 502]);
  });
});

describe("the broker's record of a write that created something: the iid of its answer", () => {
  let dir: string;
  let socketPath: string;
  let proxy: EgressProxy;
  let upstream: Server;
  let origin: string;
  const records: BrokerRecord[] = [];

  before(async () => {
    // Answers as GitLab answers a created issue: 201 and the object; plain, gzip-compressed, or without a length.
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = Buffer.from(JSON.stringify({ id: 100, iid: Number(/\/(\d+)$/.exec(req.url ?? '')?.[1] ?? 0), title: 'x' }));
        if (req.url?.startsWith('/gzip/')) {
          const zipped = gzipSync(body);
          res.writeHead(201, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': zipped.length });
          res.end(zipped);
        } else if (req.url?.startsWith('/chunked/')) {
          res.writeHead(201, { 'content-type': 'application/json' });
          res.write(body.subarray(0, 5));
          res.end(body.subarray(5));
        } else {
          res.writeHead(req.url?.startsWith('/bad/') ? 400 : 201, { 'content-type': 'application/json', 'content-length': body.length });
          res.end(body);
        }
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    origin = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    dir = await mkdtemp(path.join(tmpdir(), 'broker-created-'));
    socketPath = path.join(dir, 'proxy.sock');
    const broker = createBroker({
      ca: await createRunCa({ runId: 'created', validForMs: 60_000 }),
      credentials: [],
      origins: new Map([[origin, { caPem: null, policy: true }]]),
      guard: async () => ({ allow: true }),
      onRecord: (record) => records.push(record),
    });
    proxy = createEgressProxy({ socketPath, allowlist: parseAllowlist([origin]).entries, outboundPolicy: { allow: ['127.0.0.0/8'] }, broker });
    await proxy.listen();
  });
  after(async () => {
    await proxy?.close();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test('a 201 answer read whole gives its iid, compressed or not; a streamed one or another status gives none', async () => {
    const cases: [string, number, number | undefined][] = [
      ['/plain/3', 201, 3],
      ['/gzip/4', 201, 4],
      ['/chunked/5', 201, undefined],
      ['/bad/6', 400, undefined],
    ];
    for (const [pathname, status, iid] of cases) {
      const { answer } = viaProxy(socketPath, 'POST', `http://${origin}${pathname}`, { 'content-type': 'application/json' }, '{"title":"x"}');
      assert.equal((await within(answer, pathname)).status, status);
      const record = records.find((candidate) => candidate.target === `${origin}${pathname}`);
      assert.equal(record?.status, status, pathname);
      assert.equal(record?.createdIid, iid, pathname);
    }
  });
});
