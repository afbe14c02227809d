import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UpstreamError } from '../../src/core/index.ts';
import { networkFailure, responseError, safeCause, type RawResponse } from '../../src/gitlab/errors.ts';
import { isWithinApi, nextLink } from '../../src/gitlab/paging.ts';
import { backoffMs, retryAfterSeconds } from '../../src/gitlab/retry.ts';

for (const [header, expected] of [
  [undefined, null],
  ['', null],
  ['<https://g.example/api/v4/projects?page=2>; rel="next"', 'https://g.example/api/v4/projects?page=2'],
  [
    '<https://g.example/api/v4/projects?page=1>; rel="prev", <https://g.example/api/v4/projects?page=3>; rel="next", <https://g.example/api/v4/projects?page=9>; rel="last"',
    'https://g.example/api/v4/projects?page=3',
  ],
  ['<https://g.example/a?x=1,2>; rel=next', 'https://g.example/a?x=1,2'],
  ['<https://g.example/api/v4/projects?page=1>; rel="first"', null],
] as const) {
  test(`nextLink(${JSON.stringify(header)})`, () => assert.equal(nextLink(header), expected));
}

for (const [candidate, base, expected] of [
  ['https://g.example/api/v4/projects?page=2', 'https://g.example', true],
  ['https://g.example/gitlab/api/v4/projects?page=2', 'https://g.example/gitlab', true],
  ['https://g.example/api/v4/projects', 'https://g.example/gitlab', false],
  ['http://g.example/api/v4/projects', 'https://g.example', false],
  ['https://g.example:8443/api/v4/projects', 'https://g.example', false],
  ['https://evil.example/api/v4/projects', 'https://g.example', false],
  ['https://g.example/gitlabx/api/v4/projects', 'https://g.example/gitlab', false],
] as const) {
  test(`isWithinApi(${candidate}, ${base}) = ${expected}`, () => assert.equal(isWithinApi(new URL(candidate), base), expected));
}

const NOW = Date.parse('2025-06-01T12:00:00Z');
for (const [headers, expected] of [
  [{ 'retry-after': '30' }, 30],
  [{ 'retry-after': '0' }, 0],
  [{ 'retry-after': 'Sun, 01 Jun 2025 12:00:45 GMT' }, 45],
  [{ 'ratelimit-reset': String(NOW / 1000 + 20) }, 20],
  [{ 'retry-after': 'soon' }, null],
  [{}, null],
] as const) {
  test(`retryAfterSeconds(${JSON.stringify(headers)}) = ${expected}`, () => assert.equal(retryAfterSeconds(headers, NOW), expected));
}

test('backoff doubles up to a cap and jitters within half of it', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, () => 1)), [500, 1000, 2000, 4000, 8000, 8000, 8000]);
  assert.deepEqual([0, 1, 2].map((a) => backoffMs(a, () => 0)), [250, 500, 1000]);
});

const URL_ = 'https://gitlab.example.com/gitlab/api/v4/user';
function withCode(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

for (const [code, reason, transient] of [
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'certificate', false],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'certificate', false],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'certificate', false],
  ['CERT_HAS_EXPIRED', 'certificate', false],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'certificate', false],
  ['ERR_SSL_WRONG_VERSION_NUMBER', 'unreachable', false],
  ['ENOTFOUND', 'unreachable', false],
  ['ECONNREFUSED', 'unreachable', true],
  ['ECONNRESET', 'unreachable', true],
  ['UND_ERR_CONNECT_TIMEOUT', 'unreachable', true],
  ['UND_ERR_SOCKET', 'unreachable', true],
] as const) {
  test(`network error ${code} → ${reason}${transient ? ', retried' : ''}`, () => {
    // Wrapped once, as fetch-style errors carry the system error as `cause`.
    const failure = networkFailure(new TypeError('fetch failed', { cause: withCode(code) }), URL_, [], null);
    assert.equal(failure.error.reason, reason);
    assert.equal(failure.transient, transient);
    if (reason === 'certificate') assert.match(failure.error.message, /CA certificate to the connection/);
  });
}

test('a cause keeps name, code and message only, with secrets scrubbed', () => {
  const original = Object.assign(new Error('boom glpat-abc'), {
    code: 'ECONNRESET',
    headers: { 'private-token': 'glpat-abc' },
    socket: { remoteAddress: '10.0.0.1' },
  });
  const cause = safeCause(new Error('outer', { cause: original }), ['glpat-abc']);
  const inner = cause.cause as Error & { code?: string };
  assert.equal(inner.message, 'boom [REDACTED]');
  assert.equal(inner.code, 'ECONNRESET');
  assert.ok(!JSON.stringify(inner, Object.getOwnPropertyNames(inner)).includes('glpat-abc'));
  assert.equal((inner as unknown as { headers?: unknown }).headers, undefined);
});

function response(status: number, body: unknown, headers: Record<string, string> = {}): RawResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    url: URL_,
  };
}

for (const [name, raw, reason] of [
  ['401 unknown token', response(401, { message: '401 Unauthorized' }), 'token_invalid'],
  [
    '401 expired (body)',
    response(401, { error: 'invalid_token', error_description: 'Token is expired. You can either do re-authorization or token refresh.' }),
    'token_expired',
  ],
  [
    '401 revoked (body)',
    response(401, { error: 'invalid_token', error_description: 'Token was revoked. You have to re-authorize from the user.' }),
    'token_revoked',
  ],
  [
    '401 expired (only the WWW-Authenticate header)',
    response(401, {}, { 'www-authenticate': 'Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="Token is expired. You can either do re-authorization or token refresh."' }),
    'token_expired',
  ],
  ['401 bad access token', response(401, { error: 'invalid_token', error_description: 'Bad Access Token.' }), 'token_invalid'],
  [
    '403 insufficient scope',
    response(403, { error: 'insufficient_scope', error_description: 'The request requires higher privileges than provided by the access token.', scope: 'api read_api' }),
    'insufficient_scope',
  ],
  ['403 other', response(403, { message: '403 Forbidden' }), 'forbidden'],
  ['404 JSON', response(404, { message: '404 Project Not Found' }), 'not_found'],
  ['404 HTML', { ...response(404, '<html>nope</html>'), headers: { 'content-type': 'text/html' } }, 'not_gitlab'],
  ['401 HTML from a proxy', { ...response(401, '<html>sign in</html>'), headers: { 'content-type': 'text/html' } }, 'not_gitlab'],
  ['400 validation', response(400, { message: { title: ['is missing'] } }), 'bad_response'],
  ['502 HTML from a proxy', { ...response(502, '<html>bad gateway</html>'), headers: { 'content-type': 'text/html' } }, 'server_error'],
] as const) {
  test(`response ${name} → ${reason}`, () => {
    const error = responseError(raw, 1, []);
    assert.ok(error instanceof UpstreamError);
    assert.equal(error.reason, reason);
    assert.equal(error.status, raw.status);
  });
}

test('insufficient_scope names the scopes GitLab asks for', () => {
  const error = responseError(response(403, { error: 'insufficient_scope', scope: 'api read_api' }), 1, []);
  assert.match(error.message, /api, read_api/);
});
