import { isIP } from 'node:net';

/**
 * Allowlist entries are origins (docs/security.md, invariant 5): a host and a port. `*.example.com:443` covers
 * every subdomain of example.com on port 443, but not example.com itself (name it separately), so a
 * wildcard never widens to the apex by accident. A bare host (`registry.npmjs.org`) means port 443:
 * HTTPS is what agents use; plain HTTP or another port has to be named explicitly.
 */
export type AllowEntry = { kind: 'exact'; host: string; port: number } | { kind: 'suffix'; suffix: string; port: number };

/** An origin as the proxy sees it: a normalised host (IPv6 in brackets) and a port. */
export type Origin = { host: string; port: number };

export const DEFAULT_ALLOW_PORT = 443;

const LABEL = '[a-z0-9]([a-z0-9-]*[a-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(\\.${LABEL})*$`);

/** `host:port` with IPv6 in brackets: the form used in the egress record and in 403 messages. */
export function formatOrigin(origin: Origin): string {
  return `${origin.host}:${origin.port}`;
}

/**
 * Lower-cases a host, drops one trailing dot (`gitlab.com.` is gitlab.com) and canonicalises IP
 * literals through the URL parser (`[0:0::1]` becomes `[::1]`). Null when it is not a host name or IP.
 */
export function normaliseHost(raw: string): string | null {
  let host = raw.trim().toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('[') && host.endsWith(']')) {
    if (isIP(host.slice(1, -1)) !== 6) return null;
  } else if (isIP(host) === 0 && !HOSTNAME.test(host)) {
    return null;
  }
  try {
    const parsed = new URL(`http://${host}/`).hostname;
    return parsed === '' ? null : parsed;
  } catch {
    return null;
  }
}

function parsePort(raw: string): number | null {
  if (!/^\d{1,5}$/.test(raw)) return null;
  const port = Number(raw);
  return port >= 1 && port <= 65535 ? port : null;
}

/** Splits `host:port` / `[v6]:port` / `host` (port null when absent). Null when malformed. */
function splitAuthority(raw: string): { host: string; port: string | null } | null {
  const text = raw.trim();
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return null;
    const rest = text.slice(end + 1);
    if (rest === '') return { host: text.slice(0, end + 1), port: null };
    if (!rest.startsWith(':')) return null;
    return { host: text.slice(0, end + 1), port: rest.slice(1) };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return { host: text, port: null };
  if (text.indexOf(':') !== colon) return null; // a bare IPv6 address needs brackets
  return { host: text.slice(0, colon), port: text.slice(colon + 1) };
}

/** Parses one allowlist entry; returns an error sentence instead when it is not an origin. */
export function parseAllowEntry(entry: string): AllowEntry | { error: string } {
  const parts = splitAuthority(entry);
  if (parts === null || parts.host === '') return { error: `"${entry}" is not a host:port origin` };
  const port = parts.port === null ? DEFAULT_ALLOW_PORT : parsePort(parts.port);
  if (port === null) return { error: `"${entry}" has an invalid port` };
  if (parts.host.startsWith('*.')) {
    const suffix = normaliseHost(parts.host.slice(2));
    if (suffix === null || suffix.startsWith('[') || isIP(suffix) !== 0) {
      return { error: `"${entry}": a wildcard covers subdomains of a host name, like *.example.com:443` };
    }
    return { kind: 'suffix', suffix, port };
  }
  const host = normaliseHost(parts.host);
  if (host === null) return { error: `"${entry}" is not a valid host name or IP address` };
  return { kind: 'exact', host, port };
}

/** Parses every entry; throws nothing, returns the entries and the error sentences. */
export function parseAllowlist(entries: readonly string[]): { entries: AllowEntry[]; errors: string[] } {
  const parsed: AllowEntry[] = [];
  const errors: string[] = [];
  for (const entry of entries) {
    const result = parseAllowEntry(entry);
    if ('error' in result) errors.push(result.error);
    else parsed.push(result);
  }
  return { entries: parsed, errors };
}

/** Whether the origin is on the list. IP literals only ever match exact entries. */
export function isAllowed(origin: Origin, entries: readonly AllowEntry[]): boolean {
  for (const entry of entries) {
    if (entry.port !== origin.port) continue;
    if (entry.kind === 'exact' && entry.host === origin.host) return true;
    if (entry.kind === 'suffix' && origin.host.endsWith(`.${entry.suffix}`)) return true;
  }
  return false;
}

/** The target of `CONNECT host:port`; the port is required there (RFC 9110 9.3.6). */
export function parseConnectTarget(target: string): Origin | null {
  const parts = splitAuthority(target);
  if (parts === null || parts.port === null) return null;
  const port = parsePort(parts.port);
  const host = normaliseHost(parts.host);
  if (port === null || host === null) return null;
  return { host, port };
}

/** The origin of an absolute-form `http://` request URL; null for anything else (the proxy answers 400). */
export function originOfRequestUrl(url: string): { origin: Origin; path: string } | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'http:' || parsed.username !== '' || parsed.password !== '') return null;
  const host = normaliseHost(parsed.hostname);
  if (host === null) return null;
  return { origin: { host, port: parsed.port === '' ? 80 : Number(parsed.port) }, path: `${parsed.pathname}${parsed.search}` };
}

/** The host as `net.connect` and DNS want it: without IPv6 brackets. */
export function bareHost(host: string): string {
  return host.startsWith('[') ? host.slice(1, -1) : host;
}
