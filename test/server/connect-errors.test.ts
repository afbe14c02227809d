import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { lanAddress } from '../support/host-address.ts';

describe('connect refuses bad input with a 4xx naming the field, storing nothing, echoing no token', () => {
  let gitlab: FakeGitLab;
  let plainGitlab: FakeGitLab;
  let notGitlab: Server;
  let notGitlabUrl: string;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let userId: number;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    plainGitlab = await startFakeGitLab();
    userId = gitlab.addUser({ username: 'dev' }).id;
    notGitlab = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>Welcome to nginx!</body></html>');
    });
    await new Promise<void>((resolve) => notGitlab.listen(0, '127.0.0.1', resolve));
    const address = notGitlab.address();
    notGitlabUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
    await plainGitlab.close();
    await new Promise((resolve) => notGitlab.close(resolve));
  });

  async function refused(
    body: Record<string, unknown>,
    expected: { status?: number; field: string; code?: string | RegExp; message: RegExp },
  ): Promise<void> {
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', body);
    assert.equal(response.status, expected.status ?? 400, response.text);
    assert.equal(response.json.error.field, expected.field, response.text);
    if (expected.code instanceof RegExp) assert.match(response.json.error.code, expected.code);
    else if (expected.code !== undefined) assert.equal(response.json.error.code, expected.code);
    assert.match(response.json.error.message, expected.message);
    if (typeof body.token === 'string' && body.token.trim().length > 3) {
      assert.ok(!response.text.includes(body.token.trim()), 'the token was echoed');
    }
    const stored = await forgelink.storage.connections.listConnections(alice.id);
    assert.deepEqual(stored, [], 'something was stored');
  }

  const good = () => gitlab.addToken(userId, { scopes: ['api'], expiresAt: '2027-01-31' });

  for (const [name, baseUrl, message] of [
    ['malformed URL', 'https://exa mple.com', /spaces/],
    ['non-http scheme', 'ftp://gitlab.example.com', /https/],
    ['URL with credentials', 'https://root:secret@gitlab.example.com', /user name or password/],
    ['URL with a query', 'https://gitlab.example.com/?x=1', /query/],
  ] as const) {
    test(name, () => refused({ baseUrl, token: 'glpat-aaaaaaaaaaaaaaaaaaaa' }, { field: 'baseUrl', message }));
  }

  test('a host that is not GitLab', () =>
    refused({ baseUrl: notGitlabUrl, token: 'glpat-aaaaaaaaaaaaaaaaaaaa' }, { field: 'baseUrl', code: 'gitlab_not_gitlab', message: /GitLab/ }));

  test('an unreachable host', () =>
    refused({ baseUrl: 'https://127.0.0.1:1', token: 'glpat-aaaaaaaaaaaaaaaaaaaa' }, { field: 'baseUrl', code: 'gitlab_unreachable', message: /127\.0\.0\.1:1/ }));

  test('an untrusted certificate asks for the CA certificate, naming the caPem field and no CLI flag', () =>
    refused({ baseUrl: gitlab.baseUrl, token: good() }, { field: 'caPem', code: 'gitlab_certificate', message: /^(?!.*--ca-file).*CA certificate to the connection/ }));

  test('a CA that does not match names the caPem field', async () => {
    const other = await startFakeGitLab({ tls: true });
    try {
      await refused({ baseUrl: gitlab.baseUrl, token: good(), caPem: other.caPem }, { field: 'caPem', code: 'gitlab_certificate', message: /CA certificate/ });
    } finally {
      await other.close();
    }
  });

  test('a CA field that is not a certificate', () =>
    refused({ baseUrl: gitlab.baseUrl, token: good(), caPem: 'hello' }, { field: 'caPem', code: 'invalid_ca', message: /PEM/ }));

  for (const [name, baseUrl] of [
    ['the cloud metadata address', 'http://169.254.169.254'],
    ['a link-local address', 'https://169.254.10.10'],
    ['IPv6 link-local', 'https://[fe80::1]'],
  ] as const) {
    test(`${name} is refused before any connection`, () =>
      refused({ baseUrl, token: 'glpat-aaaaaaaaaaaaaaaaaaaa' }, { field: 'baseUrl', code: /gitlab_blocked_address|insecure_url/, message: /link-local|metadata|https/ }));
  }

  test('a private address without an operator exception', () =>
    refused({ baseUrl: 'https://10.255.255.1', token: 'glpat-aaaaaaaaaaaaaaaaaaaa' }, { field: 'baseUrl', code: 'gitlab_blocked_address', message: /FORGELINK_OUTBOUND_ALLOW/ }));

  // Each of these was judged public before: POST /connections tried to connect and, for the unrouted ranges, answered
  // only when the connect timed out. gitlab_blocked_address is the policy's refusal, given before any connection.
  for (const [name, baseUrl, message] of [
    ['NAT64 of the metadata address', 'https://[64:ff9b::a9fe:a9fe]', /\[?64:ff9b::a9fe:a9fe\]? resolves to 64:ff9b::a9fe:a9fe \(NAT64 169\.254\.169\.254\), a cloud metadata address, which forgelink never contacts/],
    ['IPv4-mapped metadata, hex spelling', 'https://[::ffff:a9fe:a9fe]', /\(IPv4-mapped 169\.254\.169\.254\), a cloud metadata address/],
    ['6to4 of a private address', 'https://[2002:a00:5::1]', /\(6to4 10\.0\.0\.5\), a private address\. The operator can allow it with FORGELINK_OUTBOUND_ALLOW/],
    ['Teredo of a loopback address', 'https://[2001:0:4136:e378:8000:63bf:80ff:fffe]', /\(Teredo client 127\.0\.0\.1\), a loopback address/],
    ['the documentation range 203.0.113.0/24', 'https://203.0.113.10', /a reserved special-purpose address\. The operator can allow it with FORGELINK_OUTBOUND_ALLOW/],
    ['the reserved range 240.0.0.0/4', 'https://240.1.2.3', /a reserved special-purpose address/],
    ['multicast', 'https://239.1.2.3', /a multicast address/],
    ['IPv6 documentation', 'https://[2001:db8::10]', /a reserved special-purpose address/],
    ["this host's own LAN address", `https://${lanAddress()}`, /one of this host's own addresses\. The operator can allow it with FORGELINK_OUTBOUND_ALLOW/],
  ] as const) {
    test(`${name} is refused at once, naming baseUrl`, () =>
      refused({ baseUrl, token: 'glpat-aaaaaaaaaaaaaaaaaaaa' }, { field: 'baseUrl', code: 'gitlab_blocked_address', message }));
  }

  for (const [name, token, message] of [
    ['empty token', '', /empty/],
    ['whitespace-only token', '   \n', /whitespace/],
    ['multi-line token', 'glpat-aaaaaaaaaaaaaaaaaaaa\nglpat-bbbbbbbbbbbbbbbbbbbb', /several lines/],
    ['token with a space', 'glpat-aaaa aaaaaaaaaaaaaaaa', /spaces/],
  ] as const) {
    test(name, () => refused({ baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token }, { field: 'token', code: 'invalid_token', message }));
  }

  test('a missing token', () => refused({ baseUrl: gitlab.baseUrl }, { field: 'token', message: /required/ }));

  test('an unknown token', () =>
    refused(
      { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token: 'glpat-unknownunknownunkn' },
      { field: 'token', code: 'gitlab_token_invalid', message: /does not recognise this token/ },
    ));

  test('an expired token', () => {
    const token = gitlab.addToken(userId, { scopes: ['api'], expiresAt: '2026-10-01' });
    gitlab.expireToken(token);
    // One piece of advice, the one that fits connect (nothing is stored yet, so there is no connection to update).
    return refused(
      { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token },
      { field: 'token', code: 'gitlab_token_expired', message: /^GitLab says this token has expired\. Create a new token with an expiry date and connect again\.$/ },
    );
  });

  test('a revoked token', () => {
    const token = gitlab.addToken(userId, { scopes: ['api'], revoked: true });
    return refused({ baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token }, { field: 'token', code: 'gitlab_token_revoked', message: /revoked/ });
  });

  test('a token that cannot clone says which scopes it has', () => {
    const token = gitlab.addToken(userId, { scopes: ['read_user'], expiresAt: '2027-01-31' });
    return refused(
      { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token },
      { field: 'token', code: 'insufficient_scope', message: /lacks any scope that allows cloning \(it has: read_user\)/ },
    );
  });

  test('plain http to a non-loopback host is refused unless the operator allows it', () =>
    refused({ baseUrl: 'http://gitlab.example.com', token: good() }, { field: 'baseUrl', code: 'insecure_url', message: /FORGELINK_ALLOW_HTTP/ }));

  test('plain http on loopback works (tests, local instances)', async () => {
    const plainUser = plainGitlab.addUser({ username: 'local' }).id;
    const token = plainGitlab.addToken(plainUser, { scopes: ['read_repository'], expiresAt: '2027-01-31' });
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: plainGitlab.baseUrl, token });
    assert.equal(response.status, 201, response.text);
    assert.equal((await forgelink.call(alice, 'DELETE', `/api/v1/connections/${response.json.id}`)).status, 204);
  });

  test('http:// to a port that speaks TLS suggests the https:// URL (and the CA the certificate needs)', async () => {
    const https = new URL(gitlab.baseUrl);
    const http = `http://${https.host}${https.pathname.replace(/\/$/, '')}`;
    await refused(
      { baseUrl: http, caPem: gitlab.caPem, token: good() },
      { field: 'baseUrl', code: 'gitlab_unreachable', message: new RegExp(`^${https.host} closed the connection on a plain HTTP request but answers HTTPS on the same port: use https://${https.host}\\.$`) },
    );
    // Without the private CA, the answer over HTTPS still shows it speaks TLS; connecting then needs the CA as well.
    await refused(
      { baseUrl: http, token: good() },
      { field: 'baseUrl', code: 'gitlab_unreachable', message: /answers HTTPS on the same port: use https:\/\/127\.0\.0\.1:\d+, with the CA certificate of its private authority \(its certificate is not signed by an authority forgelink trusts\)\.$/ },
    );
  });

  test('a body that is not JSON', async () => {
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', '{not json');
    assert.equal(response.status, 400);
    assert.equal(response.json.error.code, 'invalid_json');
  });

  test('a wrongly typed field is named', async () => {
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', { token: 42 });
    assert.equal(response.status, 400);
    assert.equal(response.json.error.field, 'token');
  });

  test('an unknown connection id is 404', async () => {
    const response = await forgelink.call(alice, 'GET', '/api/v1/connections/con_doesnotexist');
    assert.equal(response.status, 404);
    assert.equal(response.json.error.code, 'connection_not_found');
  });

  test('an unknown route is a JSON 404', async () => {
    const response = await forgelink.call(alice, 'GET', '/api/v1/nothing-here');
    assert.equal(response.status, 404);
    assert.equal(response.json.error.code, 'not_found');
  });
});
