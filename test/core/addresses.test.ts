import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkOutboundAddress,
  classifyAddress,
  classifyAddressDetail,
  invalidAllowEntry,
  isLoopbackHostname,
  type AddressClass,
} from '../../src/core/index.ts';

/** This host's interface addresses in these tests: one public IPv4, one public IPv6, one private. */
const HOST = ['81.2.69.160', '2a02:898::7', '10.9.8.7'];

/**
 * Every refused range and spelling: the address, its class, the IPv4 address it carries (if it is an IPv6 form
 * that carries one), and an operator rule (CIDR) that allows it. Metadata and link-local have no rule: nothing
 * allows them.
 */
const REFUSED: readonly (readonly [string, AddressClass, string | null, string | null])[] = [
  // Cloud metadata, every spelling.
  ['169.254.169.254', 'metadata', null, null],
  ['169.254.170.2', 'metadata', null, null],
  ['100.100.100.200', 'metadata', null, null],
  ['fd00:ec2::254', 'metadata', null, null],
  ['::ffff:169.254.169.254', 'metadata', '169.254.169.254', null],
  ['::ffff:a9fe:a9fe', 'metadata', '169.254.169.254', null],
  ['0:0:0:0:0:ffff:a9fe:a9fe', 'metadata', '169.254.169.254', null],
  ['::169.254.169.254', 'metadata', '169.254.169.254', null],
  ['64:ff9b::169.254.169.254', 'metadata', '169.254.169.254', null],
  ['64:ff9b:1::a9fe:a9fe', 'metadata', '169.254.169.254', null],
  ['2002:a9fe:a9fe::1', 'metadata', '169.254.169.254', null],
  ['2001:0:4136:e378:8000:63bf:5601:5601', 'metadata', '169.254.169.254', null],
  // Link-local.
  ['169.254.1.1', 'link_local', null, null],
  ['fe80::1', 'link_local', null, null],
  ['fe80::1%eth0', 'link_local', null, null],
  ['[fe80::1]', 'link_local', null, null],
  ['febf::1', 'link_local', null, null],
  ['::ffff:169.254.1.1', 'link_local', '169.254.1.1', null],
  // Loopback, every spelling.
  ['127.0.0.1', 'loopback', null, '127.0.0.0/8'],
  ['127.8.9.10', 'loopback', null, '127.0.0.0/8'],
  ['::1', 'loopback', null, '::1'],
  ['0:0:0:0:0:0:0:1', 'loopback', null, '::1/128'],
  ['[::1]', 'loopback', null, '::1'],
  ['::ffff:127.0.0.1', 'loopback', '127.0.0.1', '127.0.0.0/8'],
  ['::FFFF:127.0.0.1', 'loopback', '127.0.0.1', '127.0.0.1'],
  ['::ffff:7f00:1', 'loopback', '127.0.0.1', '127.0.0.0/8'],
  ['0:0:0:0:0:ffff:127.0.0.1', 'loopback', '127.0.0.1', '127.0.0.0/8'],
  ['0000:0000:0000:0000:0000:FFFF:7F00:0001', 'loopback', '127.0.0.1', '::ffff:7f00:1'],
  ['[::ffff:127.0.0.1]', 'loopback', '127.0.0.1', '127.0.0.0/8'],
  ['::ffff:0:127.0.0.1', 'loopback', '127.0.0.1', '::ffff:0:0:0/96'],
  ['::127.0.0.1', 'loopback', '127.0.0.1', '::/96'],
  ['::7f00:1', 'loopback', '127.0.0.1', '::/96'],
  ['64:ff9b::127.0.0.1', 'loopback', '127.0.0.1', '64:ff9b::/96'],
  ['64:ff9b::7f00:1', 'loopback', '127.0.0.1', '64:ff9b::/96'],
  ['64:ff9b:1::7f00:1', 'loopback', '127.0.0.1', '64:ff9b:1::/48'],
  ['2002:7f00:1::', 'loopback', '127.0.0.1', '2002::/16'],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback', '127.0.0.1', '2001::/32'],
  // Private ranges, and IPv6 forms carrying them.
  ['10.1.2.3', 'private', null, '10.0.0.0/8'],
  ['172.16.0.1', 'private', null, '172.16.0.0/12'],
  ['172.31.255.255', 'private', null, '172.16.0.0/12'],
  ['192.168.1.1', 'private', null, '192.168.0.0/16'],
  ['100.64.0.1', 'private', null, '100.64.0.0/10'],
  ['100.127.255.254', 'private', null, '100.64.0.0/10'],
  ['fc00::1', 'private', null, 'fc00::/7'],
  ['fd12:3456::1', 'private', null, 'fc00::/7'],
  ['fec0::1', 'private', null, 'fec0::/10'],
  ['::ffff:10.0.0.5', 'private', '10.0.0.5', '10.0.0.0/8'],
  ['::ffff:c0a8:101', 'private', '192.168.1.1', '192.168.0.0/16'],
  ['::10.0.0.5', 'private', '10.0.0.5', '::a00:5'],
  ['64:ff9b::10.0.0.5', 'private', '10.0.0.5', '64:ff9b::/96'],
  ['64:ff9b:1::a00:5', 'private', '10.0.0.5', '64:ff9b:1::/48'],
  ['64:ff9b:1::8.8.8.8', 'private', '8.8.8.8', '64:ff9b:1::/48'],
  ['2002:a00:5::1', 'private', '10.0.0.5', '2002:a00:5::/48'],
  ['2002:c0a8:101::', 'private', '192.168.1.1', '2002::/16'],
  ['2001:0:4136:e378:8000:63bf:f5ff:fffa', 'private', '10.0.0.5', '2001::/32'],
  // The unspecified addresses.
  ['0.0.0.0', 'unspecified', null, '0.0.0.0/8'],
  ['0.1.2.3', 'unspecified', null, '0.0.0.0/8'],
  ['::', 'unspecified', null, '::/128'],
  ['0:0:0:0:0:0:0:0', 'unspecified', null, '::'],
  ['::ffff:0.0.0.0', 'unspecified', '0.0.0.0', '0.0.0.0/8'],
  ['::0.0.0.2', 'unspecified', '0.0.0.2', '::/96'],
  // IANA special-purpose ranges.
  ['192.0.0.1', 'reserved', null, '192.0.0.0/24'],
  ['192.0.2.1', 'reserved', null, '192.0.2.0/24'],
  ['198.18.0.1', 'reserved', null, '198.18.0.0/15'],
  ['198.19.255.254', 'reserved', null, '198.18.0.0/15'],
  ['198.51.100.1', 'reserved', null, '198.51.100.0/24'],
  ['203.0.113.1', 'reserved', null, '203.0.113.0/24'],
  ['240.0.0.1', 'reserved', null, '240.0.0.0/4'],
  ['254.1.2.3', 'reserved', null, '240.0.0.0/4'],
  ['2001:db8::1', 'reserved', null, '2001:db8::/32'],
  ['100::1', 'reserved', null, '100::/64'],
  ['2001:2::1', 'reserved', null, '2001:2::/48'],
  ['3fff::1', 'reserved', null, '3fff::/20'],
  ['1::1', 'reserved', null, '1::/16'],
  ['::ffff:192.0.2.1', 'reserved', '192.0.2.1', '192.0.2.0/24'],
  ['64:ff9b::c000:201', 'reserved', '192.0.2.1', '64:ff9b::/96'],
  ['255.255.255.255', 'broadcast', null, '255.255.255.255'],
  // Multicast.
  ['224.0.0.1', 'multicast', null, '224.0.0.0/4'],
  ['239.255.255.250', 'multicast', null, '224.0.0.0/4'],
  ['ff02::1', 'multicast', null, 'ff00::/8'],
  ['ff05::1:3', 'multicast', null, 'ff00::/8'],
  ['::ffff:224.0.0.1', 'multicast', '224.0.0.1', '224.0.0.0/4'],
  // This host's own interface addresses, whatever range they are in, and the IPv6 forms carrying them.
  ['81.2.69.160', 'host', null, '81.2.69.160'],
  ['2a02:898::7', 'host', null, '2a02:898::/32'],
  ['10.9.8.7', 'host', null, '10.0.0.0/8'],
  ['::ffff:81.2.69.160', 'host', '81.2.69.160', '81.2.69.0/24'],
  ['64:ff9b::5102:45a0', 'host', '81.2.69.160', '64:ff9b::5102:45a0'],
];

for (const [ip, expected, embedded] of REFUSED) {
  test(`classifies ${ip} as ${expected}${embedded ? ` (carries ${embedded})` : ''}`, () => {
    const detail = classifyAddressDetail(ip, HOST);
    assert.equal(detail.class, expected);
    assert.equal(detail.embedded?.address ?? null, embedded);
  });
}

for (const [ip, expected, , rule] of REFUSED) {
  if (rule === null) {
    test(`${ip} (${expected}) stays refused whatever the operator allows`, () => {
      const policy = { allow: ['0.0.0.0/0', '::/0', '169.254.0.0/16', 'fe80::/10', 'metadata.test'] };
      const verdict = checkOutboundAddress('metadata.test', ip, policy, HOST);
      assert.ok(!verdict.allowed, 'allowed');
      assert.equal(verdict.class, expected);
      assert.match(verdict.reason, /, a (cloud metadata|link-local) address, which forgelink never contacts\.$/);
    });
    continue;
  }
  test(`${ip} (${expected}) is refused unless the operator allows ${rule} or the name`, () => {
    const verdict = checkOutboundAddress('gitlab.test', ip, { allow: [] }, HOST);
    assert.ok(!verdict.allowed, 'allowed without an exception');
    assert.equal(verdict.class, expected);
    assert.ok(verdict.reason.startsWith(`gitlab.test resolves to ${ip}`), verdict.reason);
    assert.ok(verdict.reason.endsWith('. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.'), verdict.reason);
    assert.equal(checkOutboundAddress('gitlab.test', ip, { allow: [rule] }, HOST).allowed, true, `by ${rule}`);
    assert.equal(checkOutboundAddress('gitlab.test', ip, { allow: ['gitlab.test'] }, HOST).allowed, true, 'by name');
    assert.equal(checkOutboundAddress('gitlab.test', ip, { allow: ['other.test', '198.51.100.200/32'] }, HOST).allowed, false);
  });
}

for (const [ip, embedded] of [
  ['172.32.0.1', null],
  ['8.8.8.8', null],
  ['172.65.251.78', null],
  ['100.128.0.1', null],
  ['2606:4700::1111', null],
  ['2a00:1450:4001:80b::200e', null],
  ['::ffff:8.8.8.8', '8.8.8.8'],
  ['::8.8.8.8', '8.8.8.8'],
  ['64:ff9b::8.8.8.8', '8.8.8.8'],
  ['2002:808:808::1', '8.8.8.8'],
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', '8.8.8.8'],
  // Globally reachable special-purpose anycast (AS112, AMT).
  ['192.175.48.1', null],
  ['192.52.193.1', null],
] as const) {
  test(`${ip} is public${embedded ? ` (carries ${embedded})` : ''}`, () => {
    const detail = classifyAddressDetail(ip, HOST);
    assert.equal(detail.class, 'public');
    assert.equal(detail.embedded?.address ?? null, embedded);
    assert.deepEqual(checkOutboundAddress('gitlab.test', ip, { allow: [] }, HOST), { allowed: true });
  });
}

test('what is not an IP address is refused', () => {
  for (const junk of ['', 'gitlab.com', '0x7f.1', '2130706433', '1.2.3', '::gg']) {
    assert.equal(classifyAddress(junk), 'reserved', junk);
    assert.equal(checkOutboundAddress('x', junk, { allow: [] }, []).allowed, false, junk);
  }
});

test('an address is the host\'s own only while the host has it', () => {
  assert.equal(classifyAddress('81.2.69.160', HOST), 'host');
  assert.equal(classifyAddress('81.2.69.160', []), 'public');
  assert.equal(classifyAddress('127.0.0.1', ['127.0.0.1']), 'loopback');
  assert.equal(classifyAddress('fe80::1', ['fe80::1%eth0']), 'link_local');
});

test('the refusal names the address, the IPv4 address it carries, and what to do', () => {
  const metadata = checkOutboundAddress('evil.test', '::ffff:a9fe:a9fe', { allow: [] }, HOST);
  assert.ok(!metadata.allowed);
  assert.equal(
    metadata.reason,
    'evil.test resolves to ::ffff:a9fe:a9fe (IPv4-mapped 169.254.169.254), a cloud metadata address, which forgelink never contacts.',
  );
  const teredo = checkOutboundAddress('t.test', '2001:0:4136:e378:8000:63bf:f5ff:fffa', { allow: [] }, HOST);
  assert.ok(!teredo.allowed);
  assert.equal(
    teredo.reason,
    't.test resolves to 2001:0:4136:e378:8000:63bf:f5ff:fffa (Teredo client 10.0.0.5), a private address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.',
  );
  const own = checkOutboundAddress('lan.test', '81.2.69.160', { allow: [] }, HOST);
  assert.ok(!own.allowed);
  assert.equal(own.reason, "lan.test resolves to 81.2.69.160, one of this host's own addresses. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.");
  const docs = checkOutboundAddress('doc.test', '192.0.2.1', { allow: [] }, HOST);
  assert.ok(!docs.allowed && /a reserved special-purpose address/.test(docs.reason));
});

test('operator exceptions by CIDR or host name', () => {
  assert.equal(checkOutboundAddress('gitlab.internal', '10.0.0.5', { allow: [] }, []).allowed, false);
  assert.equal(checkOutboundAddress('gitlab.internal', '10.0.0.5', { allow: ['10.0.0.0/8'] }, []).allowed, true);
  assert.equal(checkOutboundAddress('gitlab.internal', '10.0.0.5', { allow: ['gitlab.internal'] }, []).allowed, true);
  assert.equal(checkOutboundAddress('gitlab.internal', '10.0.0.5', { allow: [' GitLab.Internal '] }, []).allowed, true);
  assert.equal(checkOutboundAddress('git.corp', '10.0.0.5', { allow: ['*.corp'] }, []).allowed, true);
  assert.equal(checkOutboundAddress('corp', '10.0.0.5', { allow: ['*.corp'] }, []).allowed, false);
  assert.equal(checkOutboundAddress('localhost', '127.0.0.1', { allow: ['10.0.0.0/8'] }, []).allowed, false);
  assert.equal(checkOutboundAddress('localhost', '127.0.0.1', { allow: ['127.0.0.1'] }, []).allowed, true);
  assert.equal(checkOutboundAddress('localhost', '::1', { allow: ['127.0.0.0/8'] }, []).allowed, false);
  assert.equal(checkOutboundAddress('x.test', '::ffff:10.0.0.5', { allow: ['10.0.0.0/16'] }, []).allowed, true);
  assert.equal(checkOutboundAddress('x.test', '::ffff:10.1.0.5', { allow: ['10.0.0.0/16'] }, []).allowed, false);
  // Only an IPv4-mapped address is the IPv4 address itself; the others reach it through a translator or relay,
  // which the operator allows by its IPv6 prefix.
  for (const ip of ['64:ff9b::a00:5', '64:ff9b:1::a00:5', '::a00:5', '::ffff:0:a00:5', '2002:a00:5::1', '2001:0:4136:e378:8000:63bf:f5ff:fffa']) {
    assert.equal(checkOutboundAddress('x.test', ip, { allow: ['10.0.0.0/8'] }, []).allowed, false, ip);
  }
  assert.equal(checkOutboundAddress('x.test', '64:ff9b::a00:5', { allow: ['64:ff9b::/96'] }, []).allowed, true);
  assert.equal(checkOutboundAddress('gitlab.com', '172.65.251.78', { allow: [] }, []).allowed, true);
});

test('loopback host names', () => {
  for (const name of ['localhost', 'app.localhost', '127.0.0.1', '[::1]', '::1', '[::ffff:127.0.0.1]']) assert.ok(isLoopbackHostname(name), name);
  for (const name of ['example.com', '10.0.0.1', 'localhost.example.com', '[64:ff9b::7f00:1]', '[2002:7f00:1::]', '[::7f00:1]']) {
    assert.ok(!isLoopbackHostname(name), name);
  }
});

test('allow entries are validated', () => {
  for (const ok of ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', 'gitlab.internal', '*.corp.example']) {
    assert.equal(invalidAllowEntry(ok), null, ok);
  }
  for (const bad of ['10.0.0.0/33', '10.0.0.0/8/1', 'not a host', 'http://x', '*']) {
    assert.notEqual(invalidAllowEntry(bad), null, bad);
  }
});
