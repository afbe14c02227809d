/**
 * A small HTTP CONNECT proxy for tests: the stand-in for an operator's upstream proxy (squid, say) behind
 * FORGELINK_UPSTREAM_PROXY. It opens each tunnel it is asked for and records it: the target, and the local port
 * of its own connection to the target, so a test can match every connection the target saw to a tunnel and so
 * prove that nothing reached the target around the proxy. Anything but CONNECT is answered 405.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export type Tunnel = { target: string; ok: boolean; upstreamLocalPort: number | null };

export type ConnectProxy = {
  url: string;
  port: number;
  /** Every CONNECT request, in order. */
  tunnels: Tunnel[];
  /** Requests that were not CONNECT (absolute-form GETs and the like), as `METHOD url`. */
  refused: string[];
  /** Connections accepted from clients. */
  connections(): number;
  close(): Promise<void>;
};

export async function startConnectProxy(options: { host?: string } = {}): Promise<ConnectProxy> {
  const tunnels: Tunnel[] = [];
  const refused: string[] = [];
  const sockets = new Set<Duplex>();
  let accepted = 0;
  const server = createServer((req, res) => {
    refused.push(`${req.method ?? '?'} ${req.url ?? ''}`);
    res.writeHead(405, { connection: 'close' }).end('only CONNECT\n');
  });
  server.on('connection', (socket: Socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    const target = req.url ?? '';
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    const tunnel: Tunnel = { target, ok: false, upstreamLocalPort: null };
    tunnels.push(tunnel);
    client.on('error', () => client.destroy());
    if (!match) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const upstream = connect({ host: match[1] as string, port: Number(match[2]) });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      tunnel.ok = true;
      tunnel.upstreamLocalPort = upstream.localPort ?? null;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => {
      if (tunnel.ok) client.destroy();
      else client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    });
    upstream.once('close', () => client.destroy());
    client.once('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    tunnels,
    refused,
    connections: () => accepted,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
