import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import type { UpstreamProxy } from './upstream-proxy.ts';

/**
 * The outbound-address policy (docs/security.md, invariant 4; README.md, "The outbound-address policy"): link-local and cloud-metadata
 * addresses are always refused; every other address that is not public unicast — loopback, private, this
 * host's own interface addresses, IANA special-purpose ranges, multicast — only where the operator allows
 * it. Decided on the resolved address, never on the name alone; an IPv6 address that carries an IPv4
 * address (IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64, 6to4, Teredo) is judged by that IPv4 address.
 */
export type AddressClass =
  | 'metadata'
  | 'link_local'
  | 'loopback'
  | 'unspecified'
  | 'host'
  | 'private'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'public';

/** Always refused, whatever the operator allows. */
const NEVER: ReadonlySet<AddressClass> = new Set(['metadata', 'link_local']);

const METADATA = [
  '169.254.169.254/32', // AWS, GCP, Azure, OpenStack, DigitalOcean
  '169.254.170.2/32', // AWS ECS task metadata
  '100.100.100.200/32', // Alibaba Cloud
  'fd00:ec2::254/128', // AWS over IPv6
].map((cidr) => ipaddr.parseCIDR(cidr));

/**
 * ipaddr.js's names for its special ranges (its `SpecialRanges` tables), mapped to ours. A name missing here —
 * a range a later ipaddr.js adds — is refused as `reserved` until someone decides otherwise.
 */
const RANGE_CLASS: Readonly<Record<string, AddressClass>> = {
  unicast: 'public',
  // Globally reachable anycast services (IANA special-purpose registry: "Globally Reachable: True").
  as112: 'public',
  as112v6: 'public',
  amt: 'public',
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link_local',
  loopback: 'loopback',
  private: 'private',
  carrierGradeNat: 'private',
  uniqueLocal: 'private',
  deprecatedSiteLocal: 'private',
  // 192.0.0.0/24, 192.0.2.0/24, 192.88.99.0/24, 198.18.0.0/15, 198.51.100.0/24, 203.0.113.0/24, 240.0.0.0/4,
  // 2001::/23, 2001:db8::/32, 3fff::/20.
  reserved: 'reserved',
  benchmarking: 'reserved',
  discard: 'reserved',
  deprecatedOrchid: 'reserved',
  orchid2: 'reserved',
  droneRemoteIdProtocolEntityTags: 'reserved',
  segmentRouting: 'reserved',
};

/** How an IPv6 address carries an IPv4 one, for the refusal message. */
type Embedding = 'IPv4-mapped' | 'IPv4-translated' | 'IPv4-compatible' | 'NAT64' | '6to4' | 'Teredo client';

export type AddressClassification = {
  class: AddressClass;
  /** The IPv4 address the class was decided on, when the address is an IPv6 form that carries one. */
  embedded?: { address: string; as: Embedding };
};

/** The IPv4 address an IPv6 address carries, for the forms that route to it. */
function embeddedIPv4(address: ipaddr.IPv6, range: string): { ipv4: ipaddr.IPv4; as: Embedding } | null {
  const bytes = address.toByteArray();
  const at = (offset: number, xor = 0) => new ipaddr.IPv4(bytes.slice(offset, offset + 4).map((byte) => byte ^ xor));
  switch (range) {
    case 'ipv4Mapped': // ::ffff:0:0/96
      return { ipv4: at(12), as: 'IPv4-mapped' };
    case 'rfc6145': // ::ffff:0:0:0/96 (SIIT)
      return { ipv4: at(12), as: 'IPv4-translated' };
    case 'rfc6052': // 64:ff9b::/96 and the local-use 64:ff9b:1::/48 (RFC 8215), in the /96 layout
      return { ipv4: at(12), as: 'NAT64' };
    case '6to4': // 2002:AABB:CCDD::/48
      return { ipv4: at(2), as: '6to4' };
    case 'teredo': // 2001:0:<server>:<flags>:<port ^ 0xffff>:<client ^ 0xffffffff> (RFC 4380 4)
      return { ipv4: at(12, 0xff), as: 'Teredo client' };
  }
  // IPv4-compatible ::a.b.c.d (::/96, deprecated by RFC 4291 2.5.5.1); `::` and `::1` matched their own ranges first.
  if (range === 'unicast' && bytes.slice(0, 12).every((byte) => byte === 0)) return { ipv4: at(12), as: 'IPv4-compatible' };
  return null;
}

function parse(ip: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  // A zone (`fe80::1%eth0`) names the interface, not the address; brackets come from URLs.
  const bare = ip.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  // isIP first: ipaddr.js also reads legacy IPv4 spellings (`0x7f.1`) that no resolver hands us.
  const family = isIP(bare);
  if (family === 4) return ipaddr.IPv4.parse(bare);
  if (family !== 6) return null;
  // ipaddr.js reads the deprecated `::a.b.c.d` as `::ffff:a.b.c.d`; the WHATWG URL parser writes every spelling
  // as the RFC 5952 form of the same 128 bits (`::7f00:1`), which ipaddr.js then reads as it is.
  return ipaddr.IPv6.parse(new URL(`http://[${bare}]/`).hostname.slice(1, -1));
}

function sameAddress(a: ipaddr.IPv4 | ipaddr.IPv6, b: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return a.kind() === b.kind() && a.toNormalizedString() === b.toNormalizedString();
}

function classifyParsed(address: ipaddr.IPv4 | ipaddr.IPv6, hostAddresses: readonly (ipaddr.IPv4 | ipaddr.IPv6)[]): AddressClass {
  if (METADATA.some(([net, bits]) => net.kind() === address.kind() && address.match(net, bits))) return 'metadata';
  const cls = RANGE_CLASS[address.range()] ?? 'reserved';
  if (cls === 'link_local' || cls === 'loopback') return cls;
  if (hostAddresses.some((own) => sameAddress(own, address))) return 'host';
  // Global unicast IPv6 is 2000::/3 (RFC 4291 2.4); anything else ipaddr.js calls unicast is unassigned space.
  if (cls === 'public' && address instanceof ipaddr.IPv6 && (address.parts[0] ?? 0) >> 13 !== 1) return 'reserved';
  return cls;
}

/**
 * Classifies one address (any IPv4 or IPv6 spelling; brackets and zone ids allowed). `hostAddresses` are this
 * host's own interface addresses (see `hostInterfaceAddresses`). Something that is not an IP address is
 * `reserved`, so it is refused.
 */
export function classifyAddressDetail(ip: string, hostAddresses: readonly string[] = []): AddressClassification {
  const address = parse(ip);
  if (address === null) return { class: 'reserved' };
  const own = hostAddresses.map(parse).filter((entry) => entry !== null);
  if (!(address instanceof ipaddr.IPv6)) return { class: classifyParsed(address, own) };
  const v6 = address;
  const range = v6.range();
  const embedded = embeddedIPv4(v6, range);
  if (embedded === null) return { class: classifyParsed(v6, own) };
  let cls = classifyParsed(embedded.ipv4, own);
  // 64:ff9b:1::/48 is local-use (RFC 8215; IANA: not globally reachable), and a local NAT64 may lay the IPv4
  // address out differently from /96: never public, whatever the last 32 bits say.
  if (cls === 'public' && embedded.as === 'NAT64' && v6.parts[2] === 1) cls = 'private';
  return { class: cls, embedded: { address: embedded.ipv4.toString(), as: embedded.as } };
}

export function classifyAddress(ip: string, hostAddresses: readonly string[] = []): AddressClass {
  return classifyAddressDetail(ip, hostAddresses).class;
}

/** This host's own interface addresses (`os.networkInterfaces()`), for `checkOutboundAddress`; read on each call, as they change. */
export function hostInterfaceAddresses(): string[] {
  const addresses: string[] = [];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) addresses.push(entry.address);
  }
  return addresses;
}

/** Whether traffic to `hostname` stays on this host (plain http is acceptable there). */
export function isLoopbackHostname(hostname: string): boolean {
  const bare = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 0) return false;
  const detail = classifyAddressDetail(bare);
  // NAT64, 6to4, Teredo and IPv4-compatible forms of 127.0.0.1 leave the host through a translator or relay.
  return detail.class === 'loopback' && (detail.embedded === undefined || detail.embedded.as === 'IPv4-mapped');
}

/**
 * Operator exceptions: CIDRs (`10.0.0.0/8`, `127.0.0.1`) or host names (`gitlab.internal`, `*.corp`); and the operator's
 * CONNECT proxy every outbound connection goes through when set (FORGELINK_UPSTREAM_PROXY, `upstream-proxy.ts`). The
 * proxy itself is the operator's choice and is not judged; the targets behind it are, as without it.
 */
export type OutboundPolicy = { allow: readonly string[]; upstreamProxy?: UpstreamProxy | null };

export type AddressVerdict = { allowed: true } | { allowed: false; class: AddressClass; reason: string };

const DESCRIPTION: Readonly<Record<Exclude<AddressClass, 'public'>, string>> = {
  metadata: 'a cloud metadata address',
  link_local: 'a link-local address',
  loopback: 'a loopback address',
  unspecified: 'an unspecified address',
  host: "one of this host's own addresses",
  private: 'a private address',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
  reserved: 'a reserved special-purpose address',
};

/**
 * Decides whether `hostname`, resolved to `ip`, may be contacted. Pure: `hostAddresses` are this host's interface
 * addresses, which the caller reads (`hostInterfaceAddresses()`).
 */
export function checkOutboundAddress(
  hostname: string,
  ip: string,
  policy: OutboundPolicy,
  hostAddresses: readonly string[],
): AddressVerdict {
  const detail = classifyAddressDetail(ip, hostAddresses);
  const cls = detail.class;
  if (cls === 'public') return { allowed: true };
  const carried = detail.embedded ? ` (${detail.embedded.as} ${detail.embedded.address})` : '';
  const what = `${hostname} resolves to ${ip}${carried}, ${DESCRIPTION[cls]}`;
  if (NEVER.has(cls)) return { allowed: false, class: cls, reason: `${what}, which forgelink never contacts.` };
  if (allowedByPolicy(hostname, ip, detail, policy)) return { allowed: true };
  return { allowed: false, class: cls, reason: `${what}. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.` };
}

function allowedByPolicy(hostname: string, ip: string, detail: AddressClassification, policy: OutboundPolicy): boolean {
  const address = parse(ip);
  // A CIDR rule matches the address itself, and an IPv4-mapped address also by its IPv4 address (`10.0.0.0/8` covers
  // `::ffff:10.0.0.1`): both reach the same host through this host's own stack. The other forms reach the IPv4
  // address through a translator or relay, which the operator allows by its IPv6 prefix (`64:ff9b::/96`).
  const mapped = detail.embedded?.as === 'IPv4-mapped' ? ipaddr.IPv4.parse(detail.embedded.address) : null;
  const candidates = [address, mapped].filter((entry) => entry !== null);
  const name = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  for (const entry of policy.allow) {
    const rule = entry.trim().toLowerCase();
    if (rule === '') continue;
    const [net, prefix] = rule.split('/');
    const network = net === undefined ? null : parse(net);
    if (network !== null) {
      const bits = prefix === undefined ? (network.kind() === 'ipv6' ? 128 : 32) : Number(prefix);
      if (candidates.some((candidate) => candidate.kind() === network.kind() && candidate.match(network, bits))) return true;
      continue;
    }
    if (rule.startsWith('*.') ? name.endsWith(rule.slice(1)) : name === rule) return true;
  }
  return false;
}

/** Validates one FORGELINK_OUTBOUND_ALLOW entry; returns an error sentence or null. */
export function invalidAllowEntry(entry: string): string | null {
  const rule = entry.trim();
  const [net, prefix, extra] = rule.split('/');
  if (net !== undefined && isIP(net) !== 0) {
    const max = isIP(net) === 6 ? 128 : 32;
    if (extra !== undefined || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= max))) {
      return `"${rule}" is not a valid CIDR`;
    }
    return null;
  }
  if (/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(rule)) return null;
  return `"${rule}" is neither a CIDR nor a host name`;
}
