import { lookup } from 'node:dns/promises';
import { chmod, rm } from 'node:fs/promises';
import { createServer, request, type RequestOptions, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { HOP_BY_HOP_HEADERS, checkOutboundAddress, hostInterfaceAddresses, openUpstreamConnection, type BrokeredTarget, type OutboundPolicy, type SandboxBroker } from '../core/index.ts';
import {
  bareHost,
  formatOrigin,
  isAllowed,
  originOfRequestUrl,
  parseConnectTarget,
  type AllowEntry,
  type Origin,
} from '../core/allowlist.ts';
import { silentLogger, type SandboxLogger } from './logger.ts';

/** Resolves a host name to addresses, like `dns.promises.lookup(host, { all: true })`. */
export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

export type EgressProxyOptions = {
  /** Unix socket to listen on; only the run's sandbox can reach it (it lives in the run's 0700 dir). */
  socketPath: string;
  allowlist: readonly AllowEntry[];
  outboundPolicy: OutboundPolicy;
  /** Tunnels and forwarded requests open at once; more get 503 so one run cannot exhaust forgelink. */
  maxConcurrent?: number;
  connectTimeoutMs?: number;
  /** Distinct origins kept per list in the record; later ones are counted but not listed. */
  maxRecorded?: number;
  resolve?: Resolver;
  logger?: SandboxLogger;
  /** Answers `GET http://forgelink.internal/token` (core `SandboxOptions.internalToken`); without it that name is refused like any other. */
  internalToken?: () => Promise<string>;
  /** The run's credential broker: requests to the origins it names are handed to it, not tunnelled (core `SandboxOptions.broker`). */
  broker?: SandboxBroker;
};

/** The one name the proxy answers itself; `.internal` is reserved for private use (ICANN, 2024), so it never reaches DNS. */
export const INTERNAL_HOST = 'forgelink.internal';

export type EgressRecord = { allowed: string[]; refused: string[] };

export interface EgressProxy {
  listen(): Promise<void>;
  /** Origins the run was let through to and origins it was refused, each deduplicated, in first-seen order. */
  record(): EgressRecord;
  /** Stops listening and cuts every open tunnel and request. */
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(HOP_BY_HOP_HEADERS);

async function defaultResolve(host: string): Promise<{ address: string; family: number }[]> {
  return lookup(host, { all: true, verbatim: true });
}

type Verdict = { ok: true; address: string } | { ok: false; status: number; message: string };

/**
 * The per-run egress proxy: HTTP `CONNECT` tunnels and absolute-form `http://` requests, nothing else.
 * An origin must be on the run's allowlist; its name is then resolved here, on the host, every address is
 * judged by the outbound-address policy (metadata and link-local never; loopback, private, this host's own
 * addresses and special-purpose ranges only where the operator allows), and the connection goes to the
 * checked address itself, so a second DNS answer cannot swap in another one (DNS rebinding).
 */
export function createEgressProxy(options: EgressProxyOptions): EgressProxy {
  const logger = options.logger ?? silentLogger;
  const resolver = options.resolve ?? defaultResolve;
  const maxConcurrent = options.maxConcurrent ?? 64;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const maxRecorded = options.maxRecorded ?? 1000;
  const upstreamProxy = options.outboundPolicy.upstreamProxy ?? null;
  const allowed = new Set<string>();
  const refused = new Set<string>();
  const sockets = new Set<Duplex>();
  let active = 0;

  /** Records an origin; true the first time, so each refusal is logged once, not once per attempt. */
  function note(list: Set<string>, origin: string): boolean {
    if (list.has(origin) || list.size >= maxRecorded) return false;
    list.add(origin);
    return true;
  }

  // dns.lookup runs getaddrinfo on libuv's small thread pool, which forgelink's file I/O shares: one run
  // may not occupy more than two of its threads with (possibly deliberately slow) lookups.
  let lookups = 0;
  const waiting: (() => void)[] = [];
  async function limitedResolve(host: string): Promise<{ address: string }[]> {
    while (lookups >= 2) await new Promise<void>((wake) => waiting.push(wake));
    lookups += 1;
    try {
      return await resolver(host);
    } finally {
      lookups -= 1;
      waiting.shift()?.();
    }
  }

  async function decide(origin: Origin): Promise<Verdict> {
    const name = formatOrigin(origin);
    if (!isAllowed(origin, options.allowlist)) {
      if (note(refused, name)) logger.info({ origin: name }, 'sandbox egress refused: not on the allowlist');
      return { ok: false, status: 403, message: `forgelink: ${name} is not on this run's allowlist.\n` };
    }
    const host = bareHost(origin.host);
    let addresses: { address: string }[];
    try {
      addresses = isIP(host) !== 0 ? [{ address: host }] : await limitedResolve(host);
    } catch {
      return { ok: false, status: 502, message: `forgelink: ${origin.host} could not be resolved.\n` };
    }
    if (addresses.length === 0) return { ok: false, status: 502, message: `forgelink: ${origin.host} has no address.\n` };
    let reason = '';
    const own = hostInterfaceAddresses();
    for (const { address } of addresses) {
      const verdict = checkOutboundAddress(host, address, options.outboundPolicy, own);
      if (verdict.allowed) {
        note(allowed, name);
        return { ok: true, address };
      }
      reason = `forgelink: ${verdict.reason}\n`;
    }
    if (note(refused, name)) logger.info({ origin: name }, 'sandbox egress refused: address policy');
    return { ok: false, status: 403, message: reason };
  }

  function rawResponse(socket: Duplex, status: number, message: string): void {
    const reason = status === 403 ? 'Forbidden' : status === 400 ? 'Bad Request' : status === 503 ? 'Service Unavailable' : 'Bad Gateway';
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(message)}\r\nconnection: close\r\n\r\n${message}`,
    );
  }

  function track(socket: Duplex): void {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  }

  async function onConnect(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    track(client);
    client.on('error', () => client.destroy());
    const origin = parseConnectTarget(req.url ?? '');
    if (origin === null) return rawResponse(client, 400, 'forgelink: CONNECT needs a host:port target.\n');
    if (active >= maxConcurrent) return rawResponse(client, 503, 'forgelink: too many connections from this run at once.\n');
    active += 1;
    let released = false;
    const release = () => {
      if (!released) active -= 1;
      released = true;
    };
    client.once('close', release);
    const verdict = await decide(origin);
    if (!verdict.ok) return rawResponse(client, verdict.status, verdict.message);
    if (client.destroyed) return;
    const broker = options.broker;
    if (broker?.brokers(formatOrigin(origin))) return terminate(broker, client, head, origin, verdict.address);
    // Directly, or through the operator's upstream proxy (FORGELINK_UPSTREAM_PROXY) to the checked address.
    let upstream: Socket;
    try {
      upstream = await openUpstreamConnection(upstreamProxy, { host: verdict.address, port: origin.port }, { timeoutMs: connectTimeoutMs, onSocket: track });
    } catch {
      if (!client.destroyed) rawResponse(client, 502, `forgelink: ${formatOrigin(origin)} could not be reached.\n`);
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
    upstream.on('error', () => client.destroy());
    upstream.once('close', () => client.destroy());
    client.once('close', () => upstream.destroy());
  }

  /**
   * A tunnel to a brokered origin ends here: TLS with a certificate from the run's CA (which the sandbox trusts),
   * and each request inside goes to the broker with the address checked above.
   */
  async function terminate(broker: SandboxBroker, client: Duplex, head: Buffer, origin: Origin, address: string): Promise<void> {
    let secureContext;
    try {
      secureContext = await broker.tlsContext(bareHost(origin.host));
    } catch (error) {
      logger.warn({ err: String(error) }, 'sandbox broker: no certificate for the origin');
      return rawResponse(client, 502, `forgelink: ${formatOrigin(origin)} could not be brokered.\n`);
    }
    if (client.destroyed) return;
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) client.unshift(head);
    const secure = new TLSSocket(client as Socket, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
    track(secure);
    secure.on('error', () => secure.destroy());
    secure.once('close', () => client.destroy());
    brokeredTargets.set(secure, { origin: formatOrigin(origin), tls: true, address, connect: () => openUpstream(address, origin.port) });
    inner.emit('connection', secure);
  }

  /** A TCP connection to a checked address, as the broker's upstream: the one place a brokered request leaves from. */
  function openUpstream(address: string, port: number): Promise<Socket> {
    // Directly, or through the operator's upstream proxy (FORGELINK_UPSTREAM_PROXY) to the checked address.
    return openUpstreamConnection(upstreamProxy, { host: address, port }, { timeoutMs: connectTimeoutMs, onSocket: track }).then((socket) => {
      socket.setNoDelay(true);
      return socket;
    });
  }

  function forwardHeaders(headers: IncomingHttpHeaders, origin: Origin): Record<string, string | string[]> {
    const dropped = new Set(HOP_BY_HOP);
    for (const token of String(headers.connection ?? '').split(',')) dropped.add(token.trim().toLowerCase());
    const result: Record<string, string | string[]> = {};
    for (const [key, value] of Object.entries(headers)) {
      if (value === undefined || dropped.has(key) || key === 'host') continue;
      result[key] = value;
    }
    // RFC 9112 3.2.2: a proxy replaces Host with the authority of the absolute-form target.
    result.host = origin.port === 80 ? origin.host : formatOrigin(origin);
    return result;
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = originOfRequestUrl(req.url ?? '');
    const plain = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(message), connection: 'close' });
      res.end(message);
    };
    if (target === null) return plain(400, 'forgelink: this is an HTTP proxy; send absolute http:// URLs or CONNECT.\n');
    if (options.internalToken && target.origin.host === INTERNAL_HOST && target.origin.port === 80) {
      return answerInternal(req, res, target.path, options.internalToken);
    }
    if (active >= maxConcurrent) return plain(503, 'forgelink: too many connections from this run at once.\n');
    active += 1;
    let released = false;
    res.once('close', () => {
      if (!released) active -= 1;
      released = true;
    });
    const verdict = await decide(target.origin);
    if (!verdict.ok) return plain(verdict.status, verdict.message);
    if (options.broker?.brokers(formatOrigin(target.origin))) {
      const address = verdict.address;
      const port = target.origin.port;
      return options.broker.handle(req, res, { origin: formatOrigin(target.origin), tls: false, address, connect: () => openUpstream(address, port) });
    }
    const upstream = request({
      host: verdict.address,
      port: target.origin.port,
      method: req.method,
      path: target.path,
      headers: forwardHeaders(req.headers, target.origin),
      timeout: connectTimeoutMs,
      // Node uses `createConnection` only without an agent (`agent: false` would make a fresh one that connects directly).
      ...(upstreamProxy === null
        ? { agent: false }
        : {
            // Through the operator's upstream proxy: a tunnel to the checked address, plain HTTP inside it.
            createConnection: (_options: unknown, ready: (error: Error | null, socket?: Socket) => void) => {
              openUpstreamConnection(upstreamProxy, { host: verdict.address, port: target.origin.port }, { timeoutMs: connectTimeoutMs, onSocket: track }).then(
                // The tunnel comes paused; in HTTP the client speaks first, so nothing can be missed by resuming it here.
                (socket) => ready(null, socket.resume()),
                (error: Error) => ready(error),
              );
              return undefined;
            },
          }),
    } as RequestOptions);
    upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.on('response', (answer) => {
      const headers: Record<string, string | string[]> = {};
      const dropped = new Set(HOP_BY_HOP);
      for (const token of String(answer.headers.connection ?? '').split(',')) dropped.add(token.trim().toLowerCase());
      for (const [key, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !dropped.has(key)) headers[key] = value;
      }
      upstream.setTimeout(0);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (!res.headersSent) plain(502, `forgelink: ${formatOrigin(target.origin)} could not be reached.\n`);
      else res.destroy();
    });
    res.once('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  /**
   * forgelink's own answer to the sandbox: the connection's current token, so a git credential helper gets a
   * refreshed OAuth token during a long run. Only this run's sandbox reaches this proxy, and the token is the one
   * the run was given anyway (`GITLAB_TOKEN`), only newer. Never cached, never logged.
   */
  async function answerInternal(req: IncomingMessage, res: ServerResponse, path: string, token: () => Promise<string>): Promise<void> {
    req.resume();
    const reply = (status: number, body: string) => {
      res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
        connection: 'close',
      });
      res.end(body);
    };
    if (req.method !== 'GET' || path !== '/token') return reply(404, 'forgelink: the only internal resource is GET /token.\n');
    let value: string;
    try {
      value = await token();
    } catch (error) {
      logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'sandbox internal token request failed');
      return reply(502, 'forgelink: the connection has no usable token right now; the run log says why.\n');
    }
    reply(200, value);
  }

  // The HTTP server inside terminated tunnels to brokered origins: it parses the sandbox's requests and hands them
  // to the broker, each with the address its tunnel was checked for.
  const brokeredTargets = new WeakMap<object, BrokeredTarget>();
  const inner = createServer({ requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
    const target = brokeredTargets.get(req.socket);
    if (options.broker === undefined || target === undefined) return void res.destroy();
    options.broker.handle(req, res, target).catch((error: unknown) => {
      logger.warn({ err: String(error) }, 'sandbox broker: request failed');
      res.destroy();
    });
  });
  inner.on('upgrade', (_req: IncomingMessage, socket: Duplex) => rawResponse(socket, 400, 'forgelink: upgrades to a brokered origin are not supported.\n'));
  inner.on('clientError', (_error, socket: Duplex) => socket.destroy());

  const server = createServer({ requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
    onRequest(req, res).catch((error: unknown) => {
      logger.warn({ err: String(error) }, 'sandbox egress proxy request failed');
      res.destroy();
    });
  });
  server.maxConnections = maxConcurrent * 4;
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onConnect(req, socket, head).catch((error: unknown) => {
      logger.warn({ err: String(error) }, 'sandbox egress proxy tunnel failed');
      socket.destroy();
    });
  });
  // WebSocket upgrades over plain HTTP are not proxied; wss:// goes through CONNECT like any TLS.
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => rawResponse(socket, 400, 'forgelink: upgrades are not proxied; use CONNECT.\n'));
  server.on('connection', (socket: Socket) => track(socket));
  server.on('clientError', (_error, socket: Duplex) => socket.destroy());

  return {
    async listen() {
      await rm(options.socketPath, { force: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
      // The directory (0700) is the access control; the socket itself needs write for connect(2).
      await chmod(options.socketPath, 0o600);
      // Only a running command uses the proxy, and its process keeps Node alive; a session someone forgot
      // to destroy must not keep forgelink (or a test run) from exiting.
      server.unref();
    },
    record() {
      return { allowed: [...allowed], refused: [...refused] };
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      inner.closeAllConnections();
      await options.broker?.close();
      await closed;
      await rm(options.socketPath, { force: true });
    },
  };
}
