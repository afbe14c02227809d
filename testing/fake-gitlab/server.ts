import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AppEnv } from './context.ts';

export interface ListenOptions {
  host: string;
  port: number;
  /** PEM key and certificate chain; plain HTTP without. */
  tls: { key: string; cert: string } | null;
}

export interface Listening {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** Serves `app` over HTTP or HTTPS and resolves once the port is bound. */
export async function listen(app: Hono<AppEnv>, options: ListenOptions): Promise<Listening> {
  const listener = getRequestListener(app.fetch);
  const server: Server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener)
    : createHttpServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
