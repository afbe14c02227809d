import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkOutboundAddress, classifyAddress, invalidAllowEntry, isLoopbackHostname } from '../../src/core/index.ts';

for (const [ip, expected] of [
  ['169.254.169.254', 'metadata'],
  ['::ffff:169.254.169.254', 'metadata'],
  ['fd00:ec2::254', 'metadata'],
  ['100.100.100.200', 'metadata'],
  ['169.254.1.1', 'link_local'],
  ['fe80::1', 'link_local'],
  ['127.0.0.1', 'loopback'],
  ['127.8.9.10', 'loopback'],
  ['::1', 'loopback'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['0.0.0.0', 'unspecified'],
  ['10.1.2.3', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'private'],
  ['fd12:3456::1', 'private'],
  ['172.32.0.1', 'public'],
  ['8.8.8.8', 'public'],
  ['2606:4700::1111', 'public'],
] as const) {
  test(`classifies ${ip} as ${expected}`, () => assert.equal(classifyAddress(ip), expected));
}

test('metadata and link-local stay refused even when the operator allows everything', () => {
  const policy = { allow: ['0.0.0.0/0', '169.254.0.0/16', 'metadata.google.internal', '::/0'] };
  for (const ip of ['169.254.169.254', '169.254.3.4', 'fe80::1', 'fd00:ec2::254']) {
    const verdict = checkOutboundAddress('metadata.google.internal', ip, policy);
    assert.equal(verdict.allowed, false, ip);
  }
});

test('loopback and private need an operator exception, by CIDR or host name', () => {
  assert.equal(checkOutboundAddress('gitlab.internal', '10.0.0.5', { allow: [] }).allowed, false);
  assert.equal(checkOutboundAddress('gitlab.internal', '10.0.0.5', { allow: ['10.0.0.0/8'] }).allowed, true);
  assert.equal(checkOutboundAddress('gitlab.internal', '10.0.0.5', { allow: ['gitlab.internal'] }).allowed, true);
  assert.equal(checkOutboundAddress('git.corp', '10.0.0.5', { allow: ['*.corp'] }).allowed, true);
  assert.equal(checkOutboundAddress('corp', '10.0.0.5', { allow: ['*.corp'] }).allowed, false);
  assert.equal(checkOutboundAddress('localhost', '127.0.0.1', { allow: ['10.0.0.0/8'] }).allowed, false);
  assert.equal(checkOutboundAddress('localhost', '127.0.0.1', { allow: ['127.0.0.1'] }).allowed, true);
  assert.equal(checkOutboundAddress('localhost', '::1', { allow: ['127.0.0.0/8'] }).allowed, false);
  assert.equal(checkOutboundAddress('gitlab.com', '172.65.251.78', { allow: [] }).allowed, true);
});

test('a refusal says why and how to allow it', () => {
  const verdict = checkOutboundAddress('gitlab.internal', '10.0.0.5', { allow: [] });
  assert.ok(!verdict.allowed && /FORGELINK_OUTBOUND_ALLOW/.test(verdict.reason) && /10\.0\.0\.5/.test(verdict.reason));
});

test('loopback host names', () => {
  for (const name of ['localhost', 'app.localhost', '127.0.0.1', '[::1]', '::1']) assert.ok(isLoopbackHostname(name), name);
  for (const name of ['example.com', '10.0.0.1', 'localhost.example.com']) assert.ok(!isLoopbackHostname(name), name);
});

test('allow entries are validated', () => {
  for (const ok of ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', 'gitlab.internal', '*.corp.example']) {
    assert.equal(invalidAllowEntry(ok), null, ok);
  }
  for (const bad of ['10.0.0.0/33', '10.0.0.0/8/1', 'not a host', 'http://x', '*']) {
    assert.notEqual(invalidAllowEntry(bad), null, bad);
  }
});
