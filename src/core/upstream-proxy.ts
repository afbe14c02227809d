import { connect, isIP, type Socket } from 'node:net';

/**
 * The operator's HTTP CONNECT proxy (FORGELINK_UPSTREAM_PROXY; README.md, "One egress address"): when set, every
 * connection forgelink opens to the outside — its own GitLab calls, OAuth token requests, the notification webhook,
 * the doctor's probes and every run's egress proxy — is a CONNECT tunnel through it, so GitLab's firewall sees one
 * address. The outbound-address policy still judges the target first: the tunnel is opened to the address the
 * policy allowed, never to a name the proxy would resolve again.
 */
export type UpstreamProxy = { host: string; port: number };

/** Reads `http://host:port`; returns an error sentence for anything else (no https, no credentials, no path). */
export function parseUpstreamProxy(raw: string): UpstreamProxy | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `"${raw}" is not a URL; expected http://host:port`;
  }
  if (url.protocol !== 'http:') return `expected http://host:port (an HTTP CONNECT proxy), got ${url.protocol}//`;
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password (proxy authentication is not supported)';
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') return 'must be only http://host:port, without a path';
  if (url.port === '') return 'needs an explicit port, like http://proxy.example:3128';
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) };
}

export function formatUpstreamProxy(proxy: UpstreamProxy): string {
  return `http://${isIP(proxy.host) === 6 ? `[${proxy.host}]` : proxy.host}:${proxy.port}`;
}

/** Why a tunnel could not be opened; `status` is the proxy's answer when it gave one. */
export class UpstreamProxyError extends Error {
  readonly code = 'EUPSTREAMPROXY';
  readonly status: number | null;
  constructor(message: string, status: number | null = null) {
    super(message);
    this.name = 'UpstreamProxyError';
    this.status = status;
  }
}

export type UpstreamConnectOptions = {
  /** Until the connection (and, through a proxy, the tunnel) is up. */
  timeoutMs: number;
  /** Called with the socket as soon as it exists, so a caller can cut it while it is still connecting. */
  onSocket?: (socket: Socket) => void;
};

const MAX_PROXY_HEADER_BYTES = 16 * 1024;

/**
 * A TCP connection to `target` (an address the outbound policy allowed), directly or, with `proxy`, as a CONNECT
 * tunnel through it. Resolves once bytes can flow to the target; the caller layers TLS on top when it wants it.
 * This is the one place forgelink's outbound connections go through a proxy; anything that opens its own upstream
 * connections (the credential broker, say) calls this too.
 */
export function openUpstreamConnection(proxy: UpstreamProxy | null | undefined, target: { host: string; port: number }, options: UpstreamConnectOptions): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    // No Nagle: the callers relay or write whole messages, and a relay holding back a small segment for the peer's
    // delayed ACK adds tens of milliseconds to every exchange.
    const socket = connect({ host: proxy ? proxy.host : target.host, port: proxy ? proxy.port : target.port, noDelay: true });
    options.onSocket?.(socket);
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(options.timeoutMs, () =>
      fail(Object.assign(new Error(proxy ? `the upstream proxy did not open a tunnel within ${options.timeoutMs} ms` : 'connect timeout'), { code: 'ETIMEDOUT' })),
    );
    const onError = (error: Error) => {
      fail(proxy ? new UpstreamProxyError(`the upstream proxy ${formatUpstreamProxy(proxy)} cannot be reached (${(error as NodeJS.ErrnoException).code ?? error.message})`) : error);
    };
    const onClose = () => fail(new UpstreamProxyError('the connection closed before it was established'));
    socket.once('error', onError);
    socket.once('close', onClose);
    const done = () => {
      if (settled) return;
      settled = true;
      socket.setTimeout(0);
      // Only this function's own listeners: a caller's (onSocket's tracking, say) stay.
      socket.off('close', onClose);
      socket.off('error', onError);
      resolve(socket);
    };
    if (proxy === null || proxy === undefined) {
      socket.once('connect', done);
      return;
    }
    const authority = `${isIP(target.host) === 6 ? `[${target.host}]` : target.host}:${target.port}`;
    socket.once('connect', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) {
        if (received.length > MAX_PROXY_HEADER_BYTES) fail(new UpstreamProxyError('the upstream proxy sent an answer too long to be a CONNECT reply'));
        return;
      }
      socket.off('data', onData);
      const statusLine = received.subarray(0, received.indexOf('\r\n')).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
      if (status !== 200) {
        fail(new UpstreamProxyError(`the upstream proxy refused the tunnel to ${authority}: ${statusLine || 'no answer'}`, Number.isNaN(status) ? null : status));
        return;
      }
      // Bytes the target already sent after the proxy's answer belong to the caller.
      const rest = received.subarray(end + 4);
      socket.pause();
      if (rest.length > 0) socket.unshift(rest);
      done();
    };
    socket.on('data', onData);
  });
}
