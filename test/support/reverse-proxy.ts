import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReverseProxy = { baseUrl: string; close(): Promise<void> };

/**
 * A plain-HTTP reverse proxy in front of a GitLab (the fake) that sends the upstream's own Host, so GitLab
 * builds its URLs (`http_url_to_repo`, `web_url`) for an address clients do not use: an `external_url` that
 * does not match the address users connect to.
 */
export async function startReverseProxy(targetBaseUrl: string): Promise<ReverseProxy> {
  const target = new URL(targetBaseUrl);
  const server: Server = createServer((req, res) => {
    const raw = req.url ?? '/';
    const headers = { ...req.headers, host: target.host };
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: raw, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}${target.pathname.replace(/\/$/, '')}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
