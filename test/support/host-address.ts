import { networkInterfaces } from 'node:os';

/**
 * One of this machine's own non-loopback IPv4 addresses (its LAN address), which the outbound-address policy
 * refuses unless the operator allows it. Throws when the machine has none, rather than letting a test pass
 * without checking anything.
 */
export function lanAddress(): string {
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.family === 'IPv4' && !entry.internal && !entry.address.startsWith('169.254.')) return entry.address;
    }
  }
  throw new Error('this machine has no non-loopback IPv4 address to test with');
}
