import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReverseProxy = { baseUrl: string; close(): Promise<void> };

/**
 * A plain-HTTP reverse proxy in front of a GitLab (the fake), with the misconfigurations self-hosted users
 * report: decoding `%2F` before forwarding (NGINX `proxy_pass` with a URI part), sending the upstream's own
 * Host (so GitLab builds URLs for an address clients do not use), and a skewed clock in the Date header.
 */
export async function startReverseProxy(
  targetBaseUrl: string,
  options: { decodeSlashes?: boolean; upstreamHost?: boolean; dateOffsetMs?: number } = {},
): Promise<ReverseProxy> {
  const target = new URL(targetBaseUrl);
  const server: Server = createServer((req, res) => {
    const raw = req.url ?? '/';
    const cut = raw.indexOf('?');
    const path = cut === -1 ? raw : raw.slice(0, cut);
    const query = cut === -1 ? '' : raw.slice(cut);
    const headers = { ...req.headers, ...(options.upstreamHost ? { host: target.host } : {}) };
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: (options.decodeSlashes ? path.replace(/%2F/gi, '/') : path) + query, headers },
      (answer) => {
        const outgoing = { ...answer.headers };
        if (options.dateOffsetMs !== undefined) outgoing.date = new Date(Date.now() + options.dateOffsetMs).toUTCString();
        res.writeHead(answer.statusCode ?? 502, outgoing);
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
