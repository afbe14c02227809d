/**
 * What the scripted model APIs (testing/fake-anthropic, testing/fake-openai) share: a plain-HTTP server on loopback
 * that reads each request's body whole, answers JSON with a request id as the real API does, and turns a handler's
 * failure into a 500 in the API's own error shape.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ModelApiServer = { port: number; close(): Promise<void> };

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A JSON answer carrying a fresh `req_…` id in `requestIdHeader` (Anthropic: `request-id`, OpenAI: `x-request-id`). */
export function sendJson(res: ServerResponse, status: number, body: string, requestIdHeader: string): void {
  res.writeHead(status, { 'content-type': 'application/json', [requestIdHeader]: `req_${randomBytes(12).toString('hex')}` });
  res.end(body);
}

/** Listens on 127.0.0.1 (a free port); a handler that throws answers 500 with `errorBody(error)`. */
export async function serveModelApi(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  failure: { errorBody: (error: unknown) => string; requestIdHeader: string },
): Promise<ModelApiServer> {
  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, failure.errorBody(error), failure.requestIdHeader);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
