import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { createBroker, createRunCa, gitLabSurrogate, secretSurrogate, type BrokerRecord } from '../../src/broker/index.ts';
import { parseAllowlist } from '../../src/core/index.ts';
import { createEgressProxy, type EgressProxy } from '../../src/sandbox/index.ts';

/** Every request an upstream saw: path and headers. */
type Seen = { url: string; headers: IncomingHttpHeaders };

async function echoServer(seen: Seen[]): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** An absolute-form request through the proxy's unix socket, as the sandbox's clients send plain http. */
function viaProxy(socketPath: string, url: string, headers: Record<string, string>, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path: url, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the broker swaps surrogates for real credentials toward their own origins only (real HTTP through the egress proxy)', () => {
  const gitlabSeen: Seen[] = [];
  const modelSeen: Seen[] = [];
  let gitlab: { server: Server; origin: string };
  let model: { server: Server; origin: string };
  let proxy: EgressProxy;
  let dir: string;
  const records: BrokerRecord[] = [];
  const realToken = 'glpat-REALrealREALrealREAL';
  const realKey = 'sk-ant-api03-realmodelkeyrealmodelkey';
  const surrogate = gitLabSurrogate();
  const keySurrogate = secretSurrogate(realKey);
  let caPem: string;

  before(async () => {
    gitlab = await echoServer(gitlabSeen);
    model = await echoServer(modelSeen);
    dir = await mkdtemp(path.join(tmpdir(), 'broker-swap-'));
    const ca = await createRunCa({ runId: 'swap', validForMs: 60_000 });
    caPem = ca.certPem;
    const broker = createBroker({
      ca,
      credentials: [
        { name: 'GITLAB_TOKEN', surrogate, origins: [gitlab.origin], real: async () => realToken },
        { name: 'MODEL_KEY', surrogate: keySurrogate, origins: [model.origin], real: async () => realKey },
      ],
      origins: new Map([
        [gitlab.origin, { caPem: null, policy: true }],
        [model.origin, { caPem: null, policy: false }],
      ]),
      onRecord: (record) => records.push(record),
    });
    proxy = createEgressProxy({
      socketPath: path.join(dir, 'proxy.sock'),
      allowlist: parseAllowlist([gitlab.origin, model.origin]).entries,
      outboundPolicy: { allow: ['127.0.0.0/8'] },
      broker,
    });
    await proxy.listen();
  });
  after(async () => {
    await proxy.close();
    await new Promise((resolve) => gitlab.server.close(resolve));
    await new Promise((resolve) => model.server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test('surrogates look like the real thing and differ from it', () => {
    assert.match(surrogate, /^glpat-[A-Za-z0-9_-]{20}$/);
    assert.match(keySurrogate, /^sk-ant-api03-[A-Za-z0-9]{32,}$/);
    assert.notEqual(gitLabSurrogate(), surrogate);
    assert.notEqual(secretSurrogate(realKey), keySurrogate);
  });

  test('Bearer, Basic (as git sends it), PRIVATE-TOKEN, x-api-key and private_token are swapped', async () => {
    const socket = path.join(dir, 'proxy.sock');
    const basic = Buffer.from(`oauth2:${surrogate}`).toString('base64');
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/user`, { authorization: `Bearer ${surrogate}` }), 200);
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/g/p.git/info/refs?service=git-upload-pack`, { authorization: `Basic ${basic}` }), 200);
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/user`, { 'private-token': surrogate }), 200);
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/user?private_token=${surrogate}&x=1`, {}), 200);
    assert.equal(await viaProxy(socket, `http://${model.origin}/v1/messages`, { 'x-api-key': keySurrogate }), 200);
    assert.equal(gitlabSeen[0]?.headers.authorization, `Bearer ${realToken}`);
    assert.equal(gitlabSeen[1]?.headers.authorization, `Basic ${Buffer.from(`oauth2:${realToken}`).toString('base64')}`);
    assert.equal(gitlabSeen[2]?.headers['private-token'], realToken);
    assert.equal(new URL(gitlabSeen[3]?.url ?? '', 'http://x').searchParams.get('private_token'), realToken);
    assert.equal(new URL(gitlabSeen[3]?.url ?? '', 'http://x').searchParams.get('x'), '1');
    assert.equal(modelSeen[0]?.headers['x-api-key'], realKey);
  });

  test('a surrogate sent to another brokered origin, and a value the broker does not know, pass unchanged', async () => {
    const socket = path.join(dir, 'proxy.sock');
    gitlabSeen.length = 0;
    modelSeen.length = 0;
    await viaProxy(socket, `http://${model.origin}/v1/messages`, { 'x-api-key': surrogate });
    await viaProxy(socket, `http://${gitlab.origin}/api/v4/user`, { 'private-token': keySurrogate });
    await viaProxy(socket, `http://${gitlab.origin}/api/v4/user`, { 'private-token': 'glpat-somethingTheAgentBrought' });
    assert.equal(modelSeen[0]?.headers['x-api-key'], surrogate);
    assert.equal(gitlabSeen[0]?.headers['private-token'], keySurrogate);
    assert.equal(gitlabSeen[1]?.headers['private-token'], 'glpat-somethingTheAgentBrought');
  });

  test('a CONNECT to a brokered origin ends in TLS with a certificate of the run CA for that host, and nothing else trusts it', async () => {
    const socket = path.join(dir, 'proxy.sock');
    const tunnel = await new Promise<import('node:net').Socket>((resolve, reject) => {
      const req = request({ socketPath: socket, method: 'CONNECT', path: gitlab.origin });
      req.on('connect', (_res, raw) => resolve(raw));
      req.on('error', reject);
      req.end();
    });
    const secure = tlsConnect({ socket: tunnel, ca: caPem, servername: undefined, host: '127.0.0.1', checkServerIdentity: () => undefined });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    assert.equal(secure.authorized, true, String(secure.authorizationError));
    const cert = secure.getPeerCertificate(true);
    assert.match(cert.subjectaltname ?? '', /IP Address:127\.0\.0\.1/);
    assert.match(String(cert.issuer.CN), /^forgelink run swap CA/);
    secure.destroy();
    // Without the run's CA the same certificate is refused.
    const again = await new Promise<import('node:net').Socket>((resolve, reject) => {
      const req = request({ socketPath: socket, method: 'CONNECT', path: gitlab.origin });
      req.on('connect', (_res, raw) => resolve(raw));
      req.on('error', reject);
      req.end();
    });
    const untrusted = tlsConnect({ socket: again, host: '127.0.0.1' });
    const error = await new Promise<Error>((resolve) => untrusted.once('error', resolve));
    assert.match(error.message, /self-signed|unable to (get|verify)/i);
  });

  test('a write is recorded (method, origin and path, never the query); reads are not', async () => {
    records.length = 0;
    const socket = path.join(dir, 'proxy.sock');
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/projects/1/issues?private_token=${surrogate}`, { 'content-length': '0' }, 'POST'), 200);
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/projects/1`, { 'private-token': surrogate }), 200);
    assert.deepEqual(
      records.map((record) => [record.method, record.target, record.allowed, record.status]),
      [['POST', `${gitlab.origin}/api/v4/projects/1/issues`, true, 200]],
    );
  });
});

test('once sealed, the broker forwards nothing more, and it has counted the writes it forwarded', async () => {
  const seen: Seen[] = [];
  const gitlab = await echoServer(seen);
  const dir = await mkdtemp(path.join(tmpdir(), 'broker-seal-'));
  const records: BrokerRecord[] = [];
  const surrogate = gitLabSurrogate();
  const broker = createBroker({
    ca: await createRunCa({ runId: 'seal', validForMs: 60_000 }),
    credentials: [{ name: 'GITLAB_TOKEN', surrogate, origins: [gitlab.origin], real: async () => 'glpat-REALsealREALsealREAL' }],
    origins: new Map([[gitlab.origin, { caPem: null, policy: false }]]),
    onRecord: (record) => records.push(record),
  });
  const proxy = createEgressProxy({
    socketPath: path.join(dir, 'proxy.sock'),
    allowlist: parseAllowlist([gitlab.origin]).entries,
    outboundPolicy: { allow: ['127.0.0.0/8'] },
    broker,
  });
  await proxy.listen();
  try {
    const socket = path.join(dir, 'proxy.sock');
    const headers = { 'private-token': surrogate };
    // Reads (a GET, a fetch's upload-pack) are not writes; a POST to the API and a push are.
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/projects/1`, headers), 200);
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/g/p.git/git-upload-pack`, headers, 'POST'), 200);
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/projects/1/issues`, headers, 'POST'), 200);
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/g/p.git/git-receive-pack`, headers, 'POST'), 200);
    assert.deepEqual(broker.seal(), { writes: 2 });
    const forwarded = seen.length;
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/projects/1/issues`, headers, 'POST'), 503);
    assert.equal(await viaProxy(socket, `http://${gitlab.origin}/api/v4/projects/1`, headers), 503);
    assert.equal(seen.length, forwarded, 'a request went upstream after the seal');
    assert.deepEqual(broker.seal(), { writes: 2 });
    assert.equal(records.filter((record) => record.rule === 'run_ended').length, 2);
  } finally {
    await proxy.close();
    await new Promise((resolve) => gitlab.server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  }
});
