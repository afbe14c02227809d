import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Delivery = { headers: IncomingHttpHeaders; body: string; json: any };

/**
 * A local `node:http` receiver of the notification webhook: records every POST and answers `status(n)` (default 204).
 * It listens on `host` (default 127.0.0.1).
 */
export async function startWebhookReceiver(options: { status?: (attempt: number) => number; host?: string } = {}) {
  const host = options.host ?? '127.0.0.1';
  const deliveries: Delivery[] = [];
  let attempts = 0;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      attempts += 1;
      const status = options.status?.(attempts) ?? 204;
      const body = Buffer.concat(chunks).toString('utf8');
      if (status >= 200 && status < 300) deliveries.push({ headers: request.headers, body, json: JSON.parse(body) });
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/hooks/forgelink`,
    /** Accepted deliveries, in arrival order. */
    deliveries,
    /** Every POST, accepted or not. */
    attempts: () => attempts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;
