import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OutboundPolicy } from '../../src/core/index.ts';

/** The fake listens on 127.0.0.1, which the policy refuses unless the operator allows loopback. */
export const LOOPBACK_ALLOWED: OutboundPolicy = { allow: ['127.0.0.0/8'] };

/** A `sleep` that returns at once and remembers what it was asked to wait. */
export function recordingSleep(): { sleep: (ms: number) => Promise<void>; waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    sleep: async (ms) => {
      waits.push(ms);
    },
  };
}

/** A `sleep` for tests that expect no waiting at all. */
export async function noSleepExpected(ms: number): Promise<void> {
  throw new Error(`unexpected sleep of ${ms} ms`);
}

export type LocalServer = {
  baseUrl: string;
  /** Every request seen, as `METHOD /path?query`. */
  seen: string[];
  /** Headers of every request seen. */
  headers: IncomingMessage['headers'][];
  connections: number;
  close(): Promise<void>;
};

/** A tiny local HTTP server with a handcrafted answer, for cases the fake cannot produce. */
export async function startLocalServer(
  handler: (req: IncomingMessage, res: ServerResponse, self: LocalServer) => void,
): Promise<LocalServer> {
  const state: LocalServer = { baseUrl: '', seen: [], headers: [], connections: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    state.seen.push(`${req.method} ${req.url}`);
    state.headers.push(req.headers);
    handler(req, res, state);
  });
  server.on('connection', () => {
    state.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  state.baseUrl = `http://127.0.0.1:${port}`;
  state.close = () =>
    new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    });
  return state;
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A port nothing listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
