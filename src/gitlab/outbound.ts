import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import {
  checkOutboundAddress,
  hostInterfaceAddresses,
  openUpstreamConnection,
  UpstreamError,
  UpstreamProxyError,
  type AddressVerdict,
  type OutboundPolicy,
  type UpstreamProxy,
} from '../core/index.ts';

/** `dns.lookup` with `all: true`; injectable so tests can make a name resolve anywhere. */
export type ResolveAll = (hostname: string) => Promise<{ address: string; family: number }[]>;

export type OutboundAgentOptions = {
  policy: OutboundPolicy;
  /** PEM bundle of the instance's private CA, trusted in addition to Node's public roots. */
  caPem?: string | null;
  connectTimeoutMs: number;
  resolveAll?: ResolveAll;
};

function systemResolveAll(hostname: string): Promise<{ address: string; family: number }[]> {
  return dns.promises.lookup(hostname, { all: true, verbatim: true });
}

function blocked(verdict: Extract<AddressVerdict, { allowed: false }>): UpstreamError {
  return new UpstreamError('blocked_address', verdict.reason);
}

/**
 * A `net.connect` lookup that resolves the name and keeps only the addresses the outbound policy allows
 * (docs/security.md, invariant 4; README.md, "The outbound-address policy"). net.connect then connects to exactly the addresses this
 * returns: the name is resolved once and the address checked is the address used, so a name that
 * re-resolves to 169.254.169.254 (DNS rebinding) gains nothing. When no address survives, the connection
 * fails with UpstreamError('blocked_address') before any packet is sent.
 */
export function guardedLookup(policy: OutboundPolicy, resolveAll: ResolveAll = systemResolveAll): LookupFunction {
  return (hostname, options, callback) => {
    resolveAll(hostname).then(
      (addresses) => {
        const allowed: { address: string; family: number }[] = [];
        const own = hostInterfaceAddresses();
        let firstRefusal: Extract<AddressVerdict, { allowed: false }> | null = null;
        for (const entry of addresses) {
          const verdict = checkOutboundAddress(hostname, entry.address, policy, own);
          if (verdict.allowed) allowed.push(entry);
          else firstRefusal ??= verdict;
        }
        const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
        const usable = wanted === 0 ? allowed : allowed.filter((entry) => entry.family === wanted);
        const first = usable[0];
        if (first === undefined) {
          const error = firstRefusal
            ? blocked(firstRefusal)
            : Object.assign(new Error(`${hostname} did not resolve to any address`), { code: 'ENOTFOUND' });
          callback(error as NodeJS.ErrnoException, '', 0);
          return;
        }
        // net.connect asks for every address when it does happy-eyeballs (autoSelectFamily), else one.
        if (options.all) callback(null, usable);
        else callback(null, first.address, first.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };
}

/**
 * TLS contexts trusting the public roots plus one instance's CA, by that CA's PEM. Building one parses every root
 * certificate (milliseconds of CPU), and a context serves any number of connections, so each CA's is built once
 * rather than for every connection. A few dozen at most: an instance's CA is the same for all its connections.
 */
const caContexts = new Map<string, SecureContext>();
const MAX_CA_CONTEXTS = 32;

/** The shared context trusting the roots and `caPem`; null when no context can be built from it. */
function contextTrusting(caPem: string): SecureContext | null {
  let context = caContexts.get(caPem);
  if (context === undefined) {
    try {
      context = createSecureContext({ ca: [...rootCertificates, caPem] });
    } catch {
      return null;
    }
    if (caContexts.size >= MAX_CA_CONTEXTS) caContexts.delete(caContexts.keys().next().value as string);
    caContexts.set(caPem, context);
  }
  return context;
}

/**
 * An undici Agent for one GitLab instance: TLS trusts the public roots plus the instance's CA, and
 * every connection, literal IP or resolved name, passes the outbound-address policy first. With an upstream
 * proxy in the policy, each connection is a CONNECT tunnel to the allowed address through it, TLS inside.
 */
export function createOutboundAgent(options: OutboundAgentOptions): Agent {
  const ca = options.caPem ? [...rootCertificates, options.caPem] : undefined;
  const lookup = guardedLookup(options.policy, options.resolveAll);
  // The shared context when the CA makes one; otherwise the CA as it is, which fails each connection as it did.
  const secureContext = options.caPem ? contextTrusting(options.caPem) : null;
  const connect = buildConnector({
    ...(secureContext ? { secureContext } : ca ? { ca } : {}),
    timeout: options.connectTimeoutMs,
    lookup,
  });
  const proxy = options.policy.upstreamProxy ?? null;
  return new Agent({
    keepAliveTimeout: 4_000,
    connect(connectOptions, callback) {
      // net.connect skips `lookup` for literal addresses, so those are judged here.
      const host = connectOptions.hostname;
      if (isIP(host) !== 0) {
        const verdict = checkOutboundAddress(host, host, options.policy, hostInterfaceAddresses());
        if (!verdict.allowed) {
          callback(blocked(verdict), null);
          return;
        }
      }
      if (proxy === null) {
        connect(connectOptions, callback);
        return;
      }
      const https = connectOptions.protocol === 'https:';
      const port = Number(connectOptions.port) || (https ? 443 : 80);
      tunnel(proxy, lookup, host, port, options.connectTimeoutMs).then(
        (socket) => {
          if (https) connect({ ...connectOptions, httpSocket: socket }, callback);
          else callback(null, socket);
        },
        (error: Error) => callback(error, null),
      );
    },
  });
}

/** The policy's address for `host` (the same lookup as a direct connection), then a tunnel to it through `proxy`. */
async function tunnel(proxy: UpstreamProxy, lookup: LookupFunction, host: string, port: number, timeoutMs: number) {
  const address =
    isIP(host) !== 0
      ? host
      : await new Promise<string>((resolve, reject) =>
          lookup(host, { all: false }, (error, found) => (error ? reject(error) : resolve(found as string))),
        );
  try {
    return await openUpstreamConnection(proxy, { host: address, port }, { timeoutMs });
  } catch (error) {
    if (error instanceof UpstreamProxyError) throw new UpstreamError('unreachable', `forgelink could not reach ${host}: ${error.message}.`, { cause: error });
    throw error;
  }
}
