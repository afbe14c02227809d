/**
 * Allowlist entries are origins, `host:port` (DESIGN.md invariant 5); `*.suffix:port` covers subdomains.
 * A bare host means port 443, the port agents reach HTTPS services on.
 */
export function normaliseOrigin(entry: string): string | null {
  const text = entry.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const match = /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/.exec(text);
  if (!match) return null;
  const port = match[6] === undefined ? 443 : Number(match[6]);
  if (port < 1 || port > 65535) return null;
  return `${match[1] ?? ''}${match[2]}:${port}`;
}

/** Whether `origin` (host:port) is covered by `pattern` (host:port or *.suffix:port). */
export function originMatches(pattern: string, origin: string): boolean {
  const normalised = normaliseOrigin(pattern);
  if (normalised === null) return false;
  if (!normalised.startsWith('*.')) return normalised === origin;
  const [suffixHost, suffixPort] = splitOrigin(normalised.slice(1));
  const [host, port] = splitOrigin(origin);
  return port === suffixPort && host.endsWith(suffixHost) && host.length > suffixHost.length;
}

function splitOrigin(origin: string): [string, string] {
  const index = origin.lastIndexOf(':');
  return [origin.slice(0, index), origin.slice(index + 1)];
}

/** The origin of a base URL, with the scheme's default port made explicit. */
export function originOfBaseUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  return `${url.hostname}:${port}`;
}
