/** `rel="next"` target of an RFC 8288 `Link` header (GitLab docs: api/rest/index.md, "Pagination Link header"). */
export function nextLink(header: string | undefined): string | null {
  if (!header) return null;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!match) continue;
    const [, target, params] = match as unknown as [string, string, string];
    const rel = /;\s*rel\s*=\s*"?([^";]+)"?/i.exec(params)?.[1];
    if (rel?.split(/\s+/).includes('next')) return target;
  }
  return null;
}

/**
 * Whether a next-page URL may receive our token: same origin as the base URL and under its API root
 * (docs/gitlab.md, "Paging": follow a `Link` only when it points at the configured origin).
 */
export function isWithinApi(candidate: URL, baseUrl: string): boolean {
  const base = new URL(baseUrl);
  const apiRoot = `${base.pathname.replace(/\/+$/, '')}/api/v4/`;
  return candidate.origin === base.origin && candidate.pathname.startsWith(apiRoot);
}
