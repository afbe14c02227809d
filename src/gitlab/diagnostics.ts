import dns from 'node:dns';
import net from 'node:net';
import tls from 'node:tls';
import { openUpstreamConnection, type UpstreamProxy } from '../core/index.ts';

/**
 * Low-level probes for `connections doctor`: each answers one question about the path from forgelink to
 * a GitLab instance, below HTTP. They never send a token.
 */

export async function resolveName(hostname: string): Promise<{ addresses: string[] } | { error: string }> {
  if (net.isIP(hostname) !== 0) return { addresses: [hostname] };
  try {
    const found = await dns.promises.lookup(hostname, { all: true, verbatim: true });
    return { addresses: found.map((entry) => entry.address) };
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code ?? 'lookup failed' };
  }
}

/** A TCP connection to `address`, directly or as a tunnel through the operator's upstream proxy. */
export async function tcpConnect(address: string, port: number, timeoutMs: number, proxy: UpstreamProxy | null = null): Promise<{ ms: number } | { error: string }> {
  const started = performance.now();
  try {
    const socket = await openUpstreamConnection(proxy, { host: address, port }, { timeoutMs });
    socket.destroy();
    return { ms: Math.round(performance.now() - started) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { error: code === 'ETIMEDOUT' ? 'timeout' : code === 'EUPSTREAMPROXY' ? (error as Error).message : (code ?? (error as Error).message) };
  }
}

export type CertificateSummary = { subject: string; issuer: string; validTo: string; selfSigned: boolean };

export type TlsReport =
  | { ok: true; chain: CertificateSummary[]; protocol: string | null }
  | { ok: false; code: string; chain: CertificateSummary[] };

function summarise(cert: tls.DetailedPeerCertificate | tls.PeerCertificate): CertificateSummary {
  const name = (part: Record<string, string | string[] | undefined> | undefined) => {
    const cn = part?.CN ?? part?.O;
    return Array.isArray(cn) ? cn.join(', ') : (cn ?? '(unnamed)');
  };
  return {
    subject: name(cert.subject as unknown as Record<string, string>),
    issuer: name(cert.issuer as unknown as Record<string, string>),
    validTo: cert.valid_to,
    selfSigned: cert.fingerprint256 !== undefined && name(cert.subject as unknown as Record<string, string>) === name(cert.issuer as unknown as Record<string, string>),
  };
}

/** The chain the server presents, leaf first, as far as it sends it. */
function chainOf(socket: tls.TLSSocket): CertificateSummary[] {
  const chain: CertificateSummary[] = [];
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cert && cert.fingerprint256 && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(summarise(cert));
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * Verifies the server's certificate for `servername` against the public roots plus `caPem`. When that
 * fails, it connects once more without verification, only to read the chain the server presents, so the
 * report can name the authority whose certificate would fix it. Nothing is sent on either connection.
 */
export async function checkTls(input: {
  address: string;
  port: number;
  servername: string;
  caPem: string | null;
  timeoutMs: number;
  /** The operator's upstream proxy: TLS then runs inside a tunnel through it. */
  proxy?: UpstreamProxy | null;
}): Promise<TlsReport> {
  const attempt = async (verify: boolean) => {
    let tunnel: net.Socket | undefined;
    if (input.proxy) {
      try {
        tunnel = await openUpstreamConnection(input.proxy, { host: input.address, port: input.port }, { timeoutMs: input.timeoutMs });
      } catch (error) {
        return { error: error as NodeJS.ErrnoException };
      }
    }
    return new Promise<{ socket: tls.TLSSocket } | { error: NodeJS.ErrnoException }>((resolve) => {
      const socket = tls.connect({
        ...(tunnel ? { socket: tunnel } : {}),
        host: input.address,
        port: input.port,
        servername: net.isIP(input.servername) === 0 ? input.servername : undefined,
        ca: input.caPem ? [...tls.rootCertificates, input.caPem] : undefined,
        rejectUnauthorized: verify,
        checkServerIdentity: verify ? (_host, cert) => tls.checkServerIdentity(input.servername, cert) : () => undefined,
      });
      socket.setTimeout(input.timeoutMs, () => {
        socket.destroy();
        resolve({ error: Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }) });
      });
      socket.once('secureConnect', () => resolve({ socket }));
      socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error }));
    });
  };

  const verified = await attempt(true);
  if ('socket' in verified) {
    const report: TlsReport = { ok: true, chain: chainOf(verified.socket), protocol: verified.socket.getProtocol() };
    verified.socket.destroy();
    return report;
  }
  const code = verified.error.code ?? verified.error.message;
  const unverified = await attempt(false);
  if (!('socket' in unverified)) return { ok: false, code, chain: [] };
  const chain = chainOf(unverified.socket);
  unverified.socket.destroy();
  return { ok: false, code, chain };
}
