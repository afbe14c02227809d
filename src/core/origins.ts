import { formatOrigin, isAllowed, parseAllowEntry, type AllowEntry } from './allowlist.ts';

function format(entry: AllowEntry): string {
  return entry.kind === 'exact' ? formatOrigin(entry) : `*.${entry.suffix}:${entry.port}`;
}

/**
 * An allowlist entry in its canonical text form (`host:port`, `*.suffix:port`; a bare host means port
 * 443), or null when it is not an origin. A scheme typed in front (`https://`) is tolerated.
 */
export function normaliseOrigin(entry: string): string | null {
  const parsed = parseAllowEntry(entry.trim().replace(/^https?:\/\//i, '').replace(/\/+$/, ''));
  return 'error' in parsed ? null : format(parsed);
}

/** Whether the origin `host:port` is covered by `pattern` (an allowlist entry). */
export function originMatches(pattern: string, origin: string): boolean {
  const entry = parseAllowEntry(pattern);
  const target = parseAllowEntry(origin);
  if ('error' in entry || 'error' in target || target.kind !== 'exact') return false;
  return isAllowed(target, [entry]);
}

/** The origin of a base URL, with the scheme's default port made explicit: the run's GitLab allowlist entry. */
export function originOfBaseUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  return `${url.host.replace(/:\d+$/, '')}:${port}`;
}
