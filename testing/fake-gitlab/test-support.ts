import { Agent, fetch, type Response } from 'undici';
import type { FakeGitLab } from './index.ts';

/** Fetches `path` (below the base URL) from the fake, trusting its test CA when it has one. */
export function clientFor(gl: FakeGitLab): {
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  getUrl(url: string, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
} {
  const dispatcher = new Agent(gl.caPem ? { connect: { ca: gl.caPem } } : {});
  const getUrl = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers, dispatcher });
  return {
    get: (path, headers) => getUrl(`${gl.baseUrl}${path}`, headers),
    getUrl,
    close: () => dispatcher.close(),
  };
}

/** Parses a Link header into rel → URL. */
export function parseLinks(header: string | null): Record<string, string> {
  const links: Record<string, string> = {};
  for (const part of (header ?? '').split(',')) {
    const match = part.match(/<([^>]+)>;\s*rel="([^"]+)"/);
    if (match?.[1] && match[2]) links[match[2]] = match[1];
  }
  return links;
}
