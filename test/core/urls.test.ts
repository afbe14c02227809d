import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, hostOf, normaliseBaseUrl, tokenCreationUrl } from '../../src/core/index.ts';

for (const [input, expected] of [
  ['gitlab.example.com', 'https://gitlab.example.com'],
  ['  gitlab.example.com  ', 'https://gitlab.example.com'],
  ['https://gitlab.com/', 'https://gitlab.com'],
  ['https://GitLab.Example.com', 'https://gitlab.example.com'],
  ['https://example.com/gitlab/api/v4/', 'https://example.com/gitlab'],
  ['https://example.com/gitlab/API/V4', 'https://example.com/gitlab'],
  ['https://example.com/api/v4', 'https://example.com'],
  ['https://example.com:8443/gitlab//', 'https://example.com:8443/gitlab'],
  ['https://example.com:443', 'https://example.com'],
  ['example.com:8443/git/lab', 'https://example.com:8443/git/lab'],
  ['http://127.0.0.1:3000', 'http://127.0.0.1:3000'],
  ['http://localhost:3000/gitlab', 'http://localhost:3000/gitlab'],
  ['http://[::1]:3000', 'http://[::1]:3000'],
] as const) {
  test(`normalises ${JSON.stringify(input)}`, () => assert.equal(normaliseBaseUrl(input), expected));
}

for (const [input, code, words] of [
  ['', 'invalid_url', /empty/],
  ['   ', 'invalid_url', /empty/],
  ['ftp://gitlab.example.com', 'invalid_url', /https/],
  ['javascript:alert(1)', 'invalid_url', /https/],
  ['file:///etc/passwd', 'invalid_url', /https/],
  ['https://user:pass@gitlab.example.com', 'invalid_url', /user name or password/],
  ['https://oauth2@gitlab.example.com', 'invalid_url', /user name or password/],
  ['https://gitlab.example.com/?private_token=x', 'invalid_url', /query/],
  ['https://gitlab.example.com/#frag', 'invalid_url', /fragment/],
  ['https://gitlab example.com', 'invalid_url', /spaces/],
  ['https://exa mple', 'invalid_url', /spaces/],
  ['http://gitlab.example.com', 'insecure_url', /FORGELINK_ALLOW_HTTP/],
  ['http://10.0.0.5', 'insecure_url', /Plain http/],
  ['https://', 'invalid_url', /not a valid URL/],
] as const) {
  test(`refuses ${JSON.stringify(input)}`, () => {
    assert.throws(
      () => normaliseBaseUrl(input),
      (error: unknown) =>
        error instanceof InputError && error.code === code && error.field === 'baseUrl' && words.test(error.message),
    );
  });
}

test('plain http is allowed for any host when the operator allows it', () => {
  assert.equal(normaliseBaseUrl('http://gitlab.internal/', { allowHttp: true }), 'http://gitlab.internal');
});

test('host keeps a non-default port', () => {
  assert.equal(hostOf('https://example.com:8443/gitlab'), 'example.com:8443');
  assert.equal(hostOf('https://gitlab.com'), 'gitlab.com');
});

test('token creation link keeps the subpath and lists scopes with commas', () => {
  assert.equal(
    tokenCreationUrl('https://example.com/gitlab', 'forgelink agent', ['read_repository', 'write_repository']),
    'https://example.com/gitlab/-/user_settings/personal_access_tokens?name=forgelink+agent&scopes=read_repository,write_repository',
  );
});
