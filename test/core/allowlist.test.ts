import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  isAllowed,
  normaliseHost,
  originOfRequestUrl,
  parseAllowEntry,
  parseAllowlist,
  parseConnectTarget,
  type AllowEntry,
} from '../../src/core/allowlist.ts';

for (const [entry, expected] of [
  ['gitlab.com:443', { kind: 'exact', host: 'gitlab.com', port: 443 }],
  ['GitLab.Example.COM:8443', { kind: 'exact', host: 'gitlab.example.com', port: 8443 }],
  ['registry.npmjs.org', { kind: 'exact', host: 'registry.npmjs.org', port: 443 }],
  ['gitlab.com.:443', { kind: 'exact', host: 'gitlab.com', port: 443 }],
  ['127.0.0.1:8080', { kind: 'exact', host: '127.0.0.1', port: 8080 }],
  ['[::1]:8080', { kind: 'exact', host: '[::1]', port: 8080 }],
  ['[0:0::1]:80', { kind: 'exact', host: '[::1]', port: 80 }],
  ['*.example.com:443', { kind: 'suffix', suffix: 'example.com', port: 443 }],
  ['*.Example.com', { kind: 'suffix', suffix: 'example.com', port: 443 }],
] as const) {
  test(`allowlist entry ${entry}`, () => assert.deepEqual(parseAllowEntry(entry), expected));
}

for (const entry of [
  '',
  ':443',
  'gitlab.com:0',
  'gitlab.com:65536',
  'gitlab.com:https',
  'gitlab.com:443/path',
  'https://gitlab.com',
  '::1:80',
  '[::1',
  '[nothost]:80',
  '*:443',
  '*.:443',
  '*.127.0.0.1:80',
  'exa mple.com:443',
  'user@gitlab.com:443',
]) {
  test(`allowlist entry ${JSON.stringify(entry)} is refused`, () => assert.ok('error' in parseAllowEntry(entry)));
}

test('parseAllowlist keeps the good entries and names every bad one', () => {
  const { entries, errors } = parseAllowlist(['gitlab.com:443', 'bad entry', 'x:0']);
  assert.equal(entries.length, 1);
  assert.deepEqual(errors, ['"bad entry" is not a valid host name or IP address', '"x:0" has an invalid port']);
});

const LIST: AllowEntry[] = [
  { kind: 'exact', host: 'gitlab.example.com', port: 443 },
  { kind: 'suffix', suffix: 'npmjs.org', port: 443 },
  { kind: 'exact', host: '127.0.0.1', port: 8929 },
];

for (const [host, port, expected] of [
  ['gitlab.example.com', 443, true],
  ['gitlab.example.com', 22, false], // another port on the same host stays closed
  ['gitlab.example.com', 80, false],
  ['evil-gitlab.example.com', 443, false],
  ['gitlab.example.com.evil.com', 443, false],
  ['registry.npmjs.org', 443, true],
  ['a.b.npmjs.org', 443, true],
  ['npmjs.org', 443, false], // a wildcard covers subdomains, not the apex
  ['evilnpmjs.org', 443, false],
  ['registry.npmjs.org', 80, false],
  ['127.0.0.1', 8929, true],
  ['127.0.0.1', 8930, false],
  ['localhost', 8929, false], // names are compared, not what they resolve to
] as const) {
  test(`${host}:${port} is ${expected ? '' : 'not '}allowed`, () => assert.equal(isAllowed({ host, port }, LIST), expected));
}

for (const [target, expected] of [
  ['gitlab.com:443', { host: 'gitlab.com', port: 443 }],
  ['GITLAB.com.:443', { host: 'gitlab.com', port: 443 }],
  ['[::1]:443', { host: '[::1]', port: 443 }],
  ['10.0.0.1:22', { host: '10.0.0.1', port: 22 }],
  ['gitlab.com', null], // CONNECT needs a port
  ['gitlab.com:', null],
  ['gitlab.com:99999', null],
  ['/etc/passwd', null],
  ['', null],
] as const) {
  test(`CONNECT target ${JSON.stringify(target)}`, () => assert.deepEqual(parseConnectTarget(target), expected));
}

for (const [url, expected] of [
  ['http://example.com/a?b=1', { origin: { host: 'example.com', port: 80 }, path: '/a?b=1' }],
  ['http://EXAMPLE.com:8080', { origin: { host: 'example.com', port: 8080 }, path: '/' }],
  ['http://[::1]:81/x', { origin: { host: '[::1]', port: 81 }, path: '/x' }],
  ['https://example.com/', null], // TLS goes through CONNECT
  ['http://user:pw@example.com/', null],
  ['/relative', null],
  ['ftp://example.com/', null],
] as const) {
  test(`request URL ${url}`, () => assert.deepEqual(originOfRequestUrl(url), expected));
}

for (const [raw, expected] of [
  ['Example.COM', 'example.com'],
  ['example.com.', 'example.com'],
  ['[::ffff:127.0.0.1]', '[::ffff:7f00:1]'],
  ['bad_host', null],
  ['[notv6]', null],
] as const) {
  test(`normaliseHost ${raw}`, () => assert.equal(normaliseHost(raw), expected));
}
