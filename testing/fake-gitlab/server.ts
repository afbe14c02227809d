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
  quirks?: Quirks;
}

/**
 * Misconfigurations of self-hosted installations, for `connections doctor` and its tests: a reverse proxy that
 * decodes `%2F` before GitLab sees the path (GitLab then answers 404 for `group%2Fapp`), and a clock that is
 * off (seen in the `Date` header).
 */
export interface Quirks {
  decodeEncodedSlashes?: boolean;
  clockOffsetMs?: number;
}

function withQuirks(fetch: (request: Request) => Response | Promise<Response>, quirks: Quirks) {
  return async (request: Request): Promise<Response> => {
    let forwarded = request;
    const url = new URL(request.url);
    if (quirks.decodeEncodedSlashes && /%2F/i.test(url.pathname)) {
      url.pathname = url.pathname.replace(/%2F/gi, '/');
      forwarded = new Request(url, { method: request.method, headers: request.headers, body: request.body, duplex: 'half' } as RequestInit);
    }
    const response = await fetch(forwarded);
    if (!quirks.clockOffsetMs) return response;
    const headers = new Headers(response.headers);
    headers.set('date', new Date(Date.now() + quirks.clockOffsetMs).toUTCString());
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  };
}

export interface Listening {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** Serves `app` over HTTP or HTTPS and resolves once the port is bound. */
export async function listen(app: Hono<AppEnv>, options: ListenOptions): Promise<Listening> {
  const listener = getRequestListener(options.quirks ? withQuirks((request) => app.fetch(request), options.quirks) : app.fetch);
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
