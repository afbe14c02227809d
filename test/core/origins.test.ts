import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseOrigin, originMatches, originOfBaseUrl } from '../../src/core/index.ts';

for (const [entry, expected] of [
  ['registry.npmjs.org', 'registry.npmjs.org:443'],
  ['Registry.NPMJS.org:8443', 'registry.npmjs.org:8443'],
  ['https://pypi.org/', 'pypi.org:443'],
  ['*.pythonhosted.org', '*.pythonhosted.org:443'],
  ['127.0.0.1:9000', '127.0.0.1:9000'],
  ['[::1]:80', '[::1]:80'],
  ['not a host', null],
  ['example.com:0', null],
  ['example.com:99999', null],
  ['*', null],
] as const) {
  test(`origin of ${JSON.stringify(entry)}`, () => assert.equal(normaliseOrigin(entry), expected));
}

for (const [pattern, origin, expected] of [
  ['example.com:443', 'example.com:443', true],
  ['example.com', 'example.com:443', true],
  ['example.com:443', 'example.com:80', false],
  ['*.example.com:443', 'api.example.com:443', true],
  ['*.example.com:443', 'example.com:443', false],
  ['*.example.com:443', 'evil-example.com:443', false],
  ['127.0.0.1:9000', '127.0.0.1:9001', false],
] as const) {
  test(`${pattern} ${expected ? 'covers' : 'does not cover'} ${origin}`, () => assert.equal(originMatches(pattern, origin), expected));
}

for (const [baseUrl, expected] of [
  ['https://gitlab.com', 'gitlab.com:443'],
  ['https://git.example.com:8443/gitlab', 'git.example.com:8443'],
  ['http://127.0.0.1:3000', '127.0.0.1:3000'],
  ['http://[::1]/gitlab', '[::1]:80'],
] as const) {
  test(`GitLab origin of ${baseUrl}`, () => assert.equal(originOfBaseUrl(baseUrl), expected));
}
