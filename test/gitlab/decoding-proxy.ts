import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type DecodingProxy = { baseUrl: string; close(): Promise<void> };

/**
 * A reverse proxy in front of `targetBaseUrl` (plain HTTP) that decodes `%2F` in the path before forwarding,
 * as NGINX does with `proxy_pass http://upstream/;` (a URI part) — the setup GITLAB-FACTS.md warns about.
 * It serves under the same subpath as the target.
 */
export async function startDecodingProxy(targetBaseUrl: string): Promise<DecodingProxy> {
  const target = new URL(targetBaseUrl);
  const server: Server = createServer((req, res) => {
    const raw = req.url ?? '/';
    const cut = raw.indexOf('?');
    const path = cut === -1 ? raw : raw.slice(0, cut);
    const query = cut === -1 ? '' : raw.slice(cut);
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: path.replace(/%2F/gi, '/') + query,
        // The client's Host goes through (NGINX's usual `proxy_set_header Host $host`), so the paging links
        // the target builds from it point back at the proxy.
        headers: req.headers,
      },
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
    baseUrl: `http://127.0.0.1:${port}${target.pathname.replace(/\/+$/, '')}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
