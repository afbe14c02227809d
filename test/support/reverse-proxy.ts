import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReverseProxy = { baseUrl: string; close(): Promise<void> };

/**
 * A plain-HTTP reverse proxy in front of a GitLab (the fake), serving under the same subpath, with the
 * misconfigurations self-hosted users report:
 * - `decodeSlashes`: decodes `%2F` in the path before forwarding, as NGINX does with `proxy_pass
 *   http://upstream/;` (a URI part) — the setup docs/gitlab.md warns about. The client's Host goes through
 *   (NGINX's usual `proxy_set_header Host $host`), so the links GitLab builds point back at the proxy.
 * - `upstreamHost`: sends the upstream's own Host instead, so GitLab builds its URLs (`http_url_to_repo`,
 *   `web_url`) for an address clients do not use: an `external_url` that does not match.
 */
export async function startReverseProxy(
  targetBaseUrl: string,
  options: { decodeSlashes?: boolean; upstreamHost?: boolean },
): Promise<ReverseProxy> {
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
        path: (options.decodeSlashes ? path.replace(/%2F/gi, '/') : path) + query,
        headers: options.upstreamHost ? { ...req.headers, host: target.host } : req.headers,
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
