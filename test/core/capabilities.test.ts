import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capabilitiesFromScopes, connectionWarnings, type Capabilities } from '../../src/core/index.ts';

const none: Capabilities = {
  clone: false,
  push: false,
  mergeRequestsViaApi: false,
  mergeRequestsViaPushOptions: false,
  issues: false,
  readUser: false,
};

for (const [scopes, expected] of [
  [['api'], { clone: true, push: true, mergeRequestsViaApi: true, mergeRequestsViaPushOptions: true, issues: true, readUser: true }],
  [['read_api'], { ...none, clone: true, readUser: true }],
  [['read_user'], { ...none, readUser: true }],
  [['read_repository'], { ...none, clone: true }],
  [['write_repository'], { ...none, clone: true, push: true, mergeRequestsViaPushOptions: true }],
  [['read_repository', 'write_repository'], { ...none, clone: true, push: true, mergeRequestsViaPushOptions: true }],
  [['read_repository', 'write_repository', 'read_user'], { ...none, clone: true, push: true, mergeRequestsViaPushOptions: true, readUser: true }],
  [['self_rotate'], none],
  [[], none],
] as const) {
  test(`capabilities of [${scopes.join(', ')}]`, () => assert.deepEqual(capabilitiesFromScopes(scopes), expected));
}

const now = new Date('2026-11-22T15:00:00Z');
const codes = (input: Parameters<typeof connectionWarnings>[0]) => connectionWarnings(input).map((w) => w.code);

for (const [name, input, expected] of [
  ['api + read_user with expiry', { scopes: ['api', 'read_user'], expiresAt: '2027-06-01' }, ['broad_scope']],
  ['repository scopes and read_user', { scopes: ['read_repository', 'write_repository', 'read_user'], expiresAt: '2027-06-01' }, ['cannot_file_issues']],
  ['no expiry', { scopes: ['read_repository', 'write_repository', 'read_user'], expiresAt: null }, ['no_expiry', 'cannot_file_issues']],
  ['expires in 6 days', { scopes: ['read_repository', 'write_repository', 'read_user'], expiresAt: '2026-11-28' }, ['expires_soon', 'cannot_file_issues']],
  ['expires today', { scopes: ['read_repository', 'write_repository', 'read_user'], expiresAt: '2026-11-22' }, ['expires_soon', 'cannot_file_issues']],
  ['expires in 7 days', { scopes: ['read_repository', 'write_repository', 'read_user'], expiresAt: '2026-11-29' }, ['cannot_file_issues']],
  ['api is broad', { scopes: ['api'], expiresAt: '2027-06-01' }, ['broad_scope']],
  [
    'repository scopes only',
    { scopes: ['read_repository', 'write_repository'], expiresAt: '2027-06-01' },
    ['cannot_file_issues', 'cannot_read_user'],
  ],
  [
    'read-only',
    { scopes: ['read_repository'], expiresAt: null },
    ['no_expiry', 'cannot_push', 'cannot_open_merge_requests', 'cannot_file_issues', 'cannot_read_user'],
  ],
  ['read_api', { scopes: ['read_api'], expiresAt: '2027-06-01' }, ['cannot_push', 'cannot_open_merge_requests', 'cannot_file_issues']],
] as const) {
  test(`warnings: ${name}`, () =>
    assert.deepEqual(codes({ scopes: [...input.scopes], expiresAt: input.expiresAt, kind: 'pat', now }), expected));
}

test('OAuth connections are not warned for missing expiry or the api scope they must carry', () => {
  assert.deepEqual(codes({ scopes: ['api', 'read_user'], expiresAt: null, kind: 'oauth', now }), []);
});

test('the expires_soon message gives the date and the days left', () => {
  const [warning] = connectionWarnings({ scopes: ['api'], expiresAt: '2026-11-25', kind: 'pat', now });
  assert.equal(warning?.code, 'expires_soon');
  assert.match(warning?.message ?? '', /2026-11-25.*in 3 days/);
});
