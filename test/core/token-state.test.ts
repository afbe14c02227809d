import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ConflictError,
  InputError,
  NotFoundError,
  SealedTokenError,
  UpstreamError,
  tokenState,
  type TokenAnswer,
  type UpstreamReason,
} from '../../src/core/index.ts';
import { responseError, type RawResponse } from '../../src/gitlab/errors.ts';

type Expected = ReturnType<typeof tokenState>['status'];

// Every combination `GET /personal_access_tokens/self` can answer 200 with. GitLab: active = not revoked and not
// expired, so "not active, not revoked" is expired, and GitLab's flags win over the date (its clock, its time zone).
for (const active of [true, false]) {
  for (const revoked of [true, false]) {
    for (const expiresAt of [null, '2000-01-01', '2999-01-01']) {
      const expected: Expected = revoked ? 'revoked' : active ? 'active' : 'expired';
      test(`self-info active=${active} revoked=${revoked} expires_at=${expiresAt} → ${expected}`, () => {
        const state = tokenState({ kind: 'self', active, revoked, expiresAt });
        assert.equal(state.status, expected);
        if (state.status === 'active') assert.equal(state.error, null);
        else assert.ok(state.error instanceof UpstreamError && state.error.reason === `token_${expected}`);
      });
    }
  }
}

test('self-info not active: the reason names the expiry date when there is one', () => {
  const state = tokenState({ kind: 'self', active: false, revoked: false, expiresAt: '2025-03-01' });
  assert.match(String((state.error as Error).message), /expired on 2025-03-01/);
});

test('self-info 400 (not a personal access token) → invalid, naming the token', () => {
  const state = tokenState({ kind: 'not_personal' });
  assert.equal(state.status, 'invalid');
  assert.ok(state.error instanceof InputError && state.error.code === 'unsupported_token' && state.error.field === 'token');
});

test('a token GitLab took (token info 200, /user 200) → active', () => {
  assert.deepEqual(tokenState({ kind: 'accepted' }), { status: 'active', error: null });
});

// Each failure, asked about the token itself and about a resource the token was used for.
const byReason: Record<UpstreamReason, { token: Expected; resource: Expected }> = {
  token_expired: { token: 'expired', resource: 'expired' },
  token_revoked: { token: 'revoked', resource: 'revoked' },
  token_invalid: { token: 'invalid', resource: 'invalid' },
  insufficient_scope: { token: 'invalid', resource: 'unchanged' },
  forbidden: { token: 'invalid', resource: 'unchanged' },
  rate_limited: { token: 'unchanged', resource: 'unchanged' },
  blocked_address: { token: 'unreachable', resource: 'unchanged' },
  unreachable: { token: 'unreachable', resource: 'unchanged' },
  certificate: { token: 'unreachable', resource: 'unchanged' },
  not_gitlab: { token: 'unreachable', resource: 'unchanged' },
  not_found: { token: 'unreachable', resource: 'unchanged' },
  server_error: { token: 'unreachable', resource: 'unchanged' },
  bad_response: { token: 'unreachable', resource: 'unchanged' },
};
for (const [reason, expected] of Object.entries(byReason) as [UpstreamReason, { token: Expected; resource: Expected }][]) {
  for (const asked of ['token', 'resource'] as const) {
    test(`UpstreamError ${reason} asked about the ${asked} → ${expected[asked]}`, () => {
      const error = new UpstreamError(reason, `GitLab: ${reason}.`);
      const state = tokenState({ kind: 'failed', error, asked });
      assert.equal(state.status, expected[asked]);
      // The error is passed on as it is: its message becomes the status reason.
      assert.equal(state.error, error);
    });
  }
}

const others: [string, unknown, { token: Expected; resource: Expected }][] = [
  [
    'a sealed token that does not open',
    new SealedTokenError('vault_unknown_key', 'Restore the master key with key id k7, or reconnect.', { keyId: 'k7' }),
    { token: 'invalid', resource: 'invalid' },
  ],
  ['an InputError', new InputError('unsupported_token', 'Not a personal access token.'), { token: 'invalid', resource: 'unchanged' }],
  ['an OAuth application no longer configured', new ConflictError('oauth_not_configured', 'Gone.'), { token: 'unchanged', resource: 'unchanged' }],
  ['a disconnected connection', new NotFoundError('connection_not_found', 'Gone.'), { token: 'unchanged', resource: 'unchanged' }],
  ['an internal failure', new TypeError('boom'), { token: 'unchanged', resource: 'unchanged' }],
];
for (const [name, error, expected] of others) {
  for (const asked of ['token', 'resource'] as const) {
    test(`${name} asked about the ${asked} → ${expected[asked]}`, () => {
      assert.equal(tokenState({ kind: 'failed', error, asked }).status, expected[asked]);
    });
  }
}

function response(status: number, body: unknown, headers: Record<string, string> = {}): RawResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    url: 'https://gitlab.example.com/api/v4/personal_access_tokens/self',
  };
}

// GitLab's refusals as they arrive (lib/api/api_guard.rb, Doorkeeper's token info), through the HTTP layer's mapping.
const refusals: [string, RawResponse, Expected][] = [
  ['401 Token is expired', response(401, { error: 'invalid_token', error_description: 'Token is expired. You can either do re-authorization or token refresh.' }), 'expired'],
  ['401 Token was revoked', response(401, { error: 'invalid_token', error_description: 'Token was revoked. You have to re-authorize from the user.' }), 'revoked'],
  ['401 Bad Access Token.', response(401, { error: 'invalid_token', error_description: 'Bad Access Token.' }), 'invalid'],
  ['401 Unauthorized', response(401, { message: '401 Unauthorized' }), 'invalid'],
  [
    '401 from /oauth/token/info (Doorkeeper InvalidTokenResponse)',
    response(401, { error: 'invalid_token', error_description: 'The access token is invalid', state: 'unauthorized' }),
    'invalid',
  ],
  [
    '401 challenge in WWW-Authenticate only',
    response(401, '{}', { 'www-authenticate': 'Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="Token is expired. You can either do re-authorization or token refresh."' }),
    'expired',
  ],
  ['403 insufficient_scope', response(403, { error: 'insufficient_scope', error_description: 'The request requires higher privileges than provided by the access token.', scope: 'api read_api' }), 'invalid'],
  ['403 blocked account', response(403, { message: '403 Forbidden - Your account has been blocked.' }), 'invalid'],
  ['404', response(404, { message: '404 Not Found' }), 'unreachable'],
  ['500', response(500, 'oops'), 'unreachable'],
  ['200 HTML from a proxy', { ...response(401, '<html></html>'), headers: { 'content-type': 'text/html' } }, 'unreachable'],
];
for (const [name, raw, expected] of refusals) {
  test(`GitLab answers ${name} to a token question → ${expected}`, () => {
    const answer: TokenAnswer = { kind: 'failed', error: responseError(raw, 1, []), asked: 'token' };
    assert.equal(tokenState(answer).status, expected);
  });
}
