import { BlockList, isIP } from 'node:net';

/**
 * The outbound-address policy (docs/security.md, invariant 4): link-local and cloud-metadata addresses are
 * always refused; loopback and private ranges only where the operator allows them. Decided on the
 * resolved address, never on the name alone.
 */
export type AddressClass = 'metadata' | 'link_local' | 'loopback' | 'private' | 'unspecified' | 'public';

function blockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/') as [string, string];
    list.addSubnet(address, Number(prefix), isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

const METADATA = blockList([
  '169.254.169.254/32', // AWS, GCP, Azure, OpenStack, DigitalOcean
  '169.254.170.2/32', // AWS ECS task metadata
  '100.100.100.200/32', // Alibaba Cloud
  'fd00:ec2::254/128', // AWS over IPv6
]);
const LINK_LOCAL = blockList(['169.254.0.0/16', 'fe80::/10']);
const LOOPBACK = blockList(['127.0.0.0/8', '::1/128']);
const UNSPECIFIED = blockList(['0.0.0.0/8', '::/128']);
const PRIVATE = blockList([
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10', // carrier-grade NAT
  'fc00::/7', // unique local
]);

/** Unwraps IPv4-mapped IPv6 (`::ffff:10.0.0.1`) so it is judged as the IPv4 address it is. */
function plain(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1] as string, family: 'ipv4' };
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

export function classifyAddress(ip: string): AddressClass {
  const { address, family } = plain(ip);
  if (METADATA.check(address, family)) return 'metadata';
  if (LINK_LOCAL.check(address, family)) return 'link_local';
  if (LOOPBACK.check(address, family)) return 'loopback';
  if (UNSPECIFIED.check(address, family)) return 'unspecified';
  if (PRIVATE.check(address, family)) return 'private';
  return 'public';
}

export function isLoopbackHostname(hostname: string): boolean {
  const bare = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  return isIP(bare) !== 0 && classifyAddress(bare) === 'loopback';
}

/** Operator exceptions: CIDRs (`10.0.0.0/8`, `127.0.0.1`) or host names (`gitlab.internal`, `*.corp`). */
export type OutboundPolicy = { allow: readonly string[] };

export type AddressVerdict = { allowed: true } | { allowed: false; class: AddressClass; reason: string };

/** Decides whether `hostname`, resolved to `ip`, may be contacted. */
export function checkOutboundAddress(hostname: string, ip: string, policy: OutboundPolicy): AddressVerdict {
  const cls = classifyAddress(ip);
  if (cls === 'public') return { allowed: true };
  if (cls === 'metadata' || cls === 'link_local') {
    return {
      allowed: false,
      class: cls,
      reason: `${hostname} resolves to ${ip}, a ${cls === 'metadata' ? 'cloud metadata' : 'link-local'} address, which forgelink never contacts.`,
    };
  }
  if (allowedByPolicy(hostname, ip, policy)) return { allowed: true };
  return {
    allowed: false,
    class: cls,
    reason: `${hostname} resolves to ${ip}, a ${cls === 'private' ? 'private' : 'loopback'} address. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.`,
  };
}

function allowedByPolicy(hostname: string, ip: string, policy: OutboundPolicy): boolean {
  const { address, family } = plain(ip);
  const name = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  for (const entry of policy.allow) {
    const rule = entry.trim().toLowerCase();
    if (rule === '') continue;
    const [net, prefix] = rule.split('/');
    if (net !== undefined && isIP(net) !== 0) {
      const netFamily = isIP(net) === 6 ? 'ipv6' : 'ipv4';
      if (netFamily !== family) continue;
      const bits = prefix === undefined ? (netFamily === 'ipv6' ? 128 : 32) : Number(prefix);
      if (blockList([`${net}/${bits}`]).check(address, family)) return true;
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
