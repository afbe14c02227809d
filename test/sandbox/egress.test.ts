import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { createTestTls, removeTestTls } from '../../testing/fake-gitlab/tls.ts';
import { LOOPBACK_ALLOWED, run, sandboxFixture, sh, textServer } from './helpers.ts';

const CA = '/etc/forgelink/ca.pem';

type TlsServer = { port: number; origin: string; seen: string[]; caPem: string };

/** An HTTPS server on 127.0.0.1 with a certificate from a fresh test CA. */
async function tlsServer(t: TestContext): Promise<TlsServer> {
  const tls = await createTestTls();
  const seen: string[] = [];
  const server = createServer({ key: tls.serverKeyPem, cert: tls.serverCertPem }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end(`secure ${req.method} ${req.url}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await removeTestTls(tls);
  });
  return { port, origin: `127.0.0.1:${port}`, seen, caPem: tls.caPem };
}

test('the sandbox reaches its allowlist through the proxy, and nothing else', async (t) => {
  const box = await sandboxFixture(t);
  const plain = await textServer('allowed');
  const other = await textServer('other');
  t.after(() => Promise.all([plain.close(), other.close()]));
  const secure = await tlsServer(t);
  const session = await box.create({
    runId: 'egress',
    workspaceDir: await box.workspace(),
    allowlist: [plain.origin, secure.origin, '169.254.169.254:80'],
    outboundPolicy: LOOPBACK_ALLOWED,
    files: { [CA]: secure.caPem },
  });
  const env = { MARK: box.marker, NODE_EXTRA_CA_CERTS: CA };

  const curl = await run(
    session,
    sh(
      `curl -sS http://${plain.origin}/curl-http
       curl -sS --proxytunnel http://${plain.origin}/curl-connect
       curl -sS --cacert ${CA} https://${secure.origin}/curl-https`,
      box.marker,
    ),
    { env },
  );
  assert.equal(curl.stdout, `allowed GET /curl-http\nallowed GET /curl-connect\nsecure GET /curl-https\n`, curl.stderr);

  const node = await run(
    session,
    [
      'node',
      '-e',
      `for (const url of process.argv.slice(1)) console.log((await (await fetch(url)).text()).trim());`,
      `http://${plain.origin}/node-http`,
      `https://${secure.origin}/node-https`,
    ],
    { env: { ...env, NODE_OPTIONS: '--input-type=module' } },
  );
  assert.equal(node.stdout, 'allowed GET /node-http\nsecure GET /node-https\n', node.stderr);

  const python = await run(
    session,
    [
      '/usr/bin/python3',
      '-c',
      `import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="${CA}")
for url in sys.argv[1:]:
    print(urllib.request.urlopen(url, context=ctx if url.startswith("https") else None).read().decode().strip())`,
      `http://${plain.origin}/python-http`,
      `https://${secure.origin}/python-https`,
    ],
    { env },
  );
  assert.equal(python.stdout, 'allowed GET /python-http\nsecure GET /python-https\n', python.stderr);

  const refused = await run(
    session,
    sh(
      `curl -sS -o /dev/null -w '%{http_code}\\n' http://${other.origin}/not-listed
       curl -sS http://${other.origin}/not-listed-body
       curl -sS --proxytunnel http://${other.origin}/not-listed-connect; echo "connect exit $?"
       curl -sS -w '%{http_code}\\n' http://169.254.169.254/latest/meta-data/
       curl -sS --noproxy '*' --connect-timeout 3 http://${plain.origin}/direct; echo "direct exit $?"
       curl -sS --noproxy '*' --connect-timeout 3 http://93.184.215.14/; echo "outside exit $?"`,
      box.marker,
    ),
    { env },
  );
  const lines = refused.stdout.trim().split('\n');
  assert.deepEqual(lines, [
    '403',
    `forgelink: ${other.origin} is not on this run's allowlist.`,
    'connect exit 56',
    'forgelink: 169.254.169.254 resolves to 169.254.169.254, a cloud metadata address, which forgelink never contacts.',
    '403',
    'direct exit 7',
    'outside exit 7',
  ]);
  // Direct connections fail at once: the sandbox's network namespace has a loopback and nothing else.
  assert.match(refused.stderr, /Failed to connect to 127\.0\.0\.1 port \d+/);
  assert.match(refused.stderr, /Network is unreachable|Couldn't connect/);

  assert.deepEqual(plain.seen, ['GET /curl-http', 'GET /curl-connect', 'GET /node-http', 'GET /python-http']);
  assert.deepEqual(secure.seen, ['GET /curl-https', 'GET /node-https', 'GET /python-https']);
  assert.deepEqual(other.seen, [], 'a refused origin must never be contacted');
  assert.deepEqual(session.egress(), {
    allowed: [plain.origin, secure.origin],
    refused: [other.origin, '169.254.169.254:80'],
  });
});

test('another port on an allowed host stays closed, and a loopback origin needs the operator policy', async (t) => {
  const box = await sandboxFixture(t);
  const server = await textServer('loopback');
  t.after(() => server.close());
  const session = await box.create({
    runId: 'policy',
    workspaceDir: await box.workspace(),
    allowlist: [`127.0.0.1:${server.port}`, `localhost:${server.port}`],
    outboundPolicy: { allow: [] },
  });
  const result = await run(
    session,
    sh(`curl -sS http://127.0.0.1:${server.port}/; curl -sS -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:${server.port + 1}/`, box.marker),
    { env: { MARK: box.marker } },
  );
  assert.equal(
    result.stdout,
    `forgelink: 127.0.0.1 resolves to 127.0.0.1, a loopback address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.\n403\n`,
  );
  assert.deepEqual(server.seen, []);
  assert.deepEqual(session.egress(), { allowed: [], refused: [`127.0.0.1:${server.port}`, `127.0.0.1:${server.port + 1}`] });
});

test('an offline command reaches nothing, not even the allowlist, and nothing in its sandbox listens', async (t) => {
  const box = await sandboxFixture(t);
  const plain = await textServer('allowed');
  t.after(() => plain.close());
  const session = await box.create({ runId: 'offline', workspaceDir: await box.workspace(), allowlist: [plain.origin], outboundPolicy: LOOPBACK_ALLOWED });
  const probe = sh(`curl -sS --max-time 5 http://${plain.origin}/reached && echo REACHED; grep -c ":0C38 00000000:0000 0A" /proc/net/tcp || true`, box.marker);
  const online = await run(session, probe, { env: { MARK: box.marker } });
  assert.match(online.stdout, /REACHED/, online.stderr);
  const offline = await run(session, probe, { env: { MARK: box.marker }, offline: true });
  assert.doesNotMatch(offline.stdout, /REACHED/);
  // Port 3128 (0C38), where the bridge to the proxy listens in every other command, has no listener.
  assert.equal(offline.stdout.trim(), '0', offline.stderr);
  assert.match(offline.stderr, /curl: \(\d+\)/);
});
