/**
 * Redirect URI rules of Doorkeeper's Helpers::URIChecker and Authorization::URIBuilder
 * (lib/doorkeeper/oauth/helpers/uri_checker.rb, lib/doorkeeper/oauth/authorization/uri_builder.rb).
 */

function parse(uri: string): URL | null {
  try {
    return new URL(uri);
  } catch {
    return null;
  }
}

/** URIChecker.valid?: a scheme, a host for http(s), no fragment. */
export function isValidRedirectUri(uri: string): boolean {
  const url = parse(uri);
  if (!url) return false;
  if ((url.protocol === 'http:' || url.protocol === 'https:') && url.hostname === '') return false;
  return url.hash === '' && !uri.includes('#');
}

/** URIChecker.loopback_uri?: the host is a loopback IP address (`localhost` is a name, not an address). */
function isLoopback(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return /^127(?:\.\d{1,3}){3}$/.test(host) || host === '::1';
}

/** URIChecker.query_matches?: the same `&`-separated pairs in any order. */
function queryMatches(query: string, registeredQuery: string): boolean {
  const pairs = (q: string) => q.replace(/^\?/, '').split('&').sort();
  return JSON.stringify(pairs(query)) === JSON.stringify(pairs(registeredQuery));
}

/**
 * URIChecker.matches?: equal after URI normalisation, except that the request's query is ignored unless
 * the registered URI has one (then the pairs must match in any order), and that loopback IP URIs match on
 * any port (RFC 8252, section 7.3).
 */
export function redirectUriMatches(requested: string, registered: string): boolean {
  const url = parse(requested);
  const client = parse(registered);
  if (!url || !client) return false;
  if (client.search !== '' && !queryMatches(url.search, client.search)) return false;
  const anyPort = isLoopback(url) && isLoopback(client);
  return (
    url.protocol === client.protocol &&
    url.username === client.username &&
    url.password === client.password &&
    url.hostname === client.hostname &&
    (anyPort || url.port === client.port) &&
    url.pathname === client.pathname
  );
}

/** URIChecker.valid_for_authorization?: valid, and matching one of the registered URIs. */
export function redirectUriAllowed(requested: string, registered: readonly string[]): boolean {
  return isValidRedirectUri(requested) && registered.some((uri) => redirectUriMatches(requested, uri));
}

/**
 * URIBuilder.uri_with_query: the URI's own query merged with `params` (blank values dropped), encoded as
 * Rack::Utils.build_query does (spaces as `+`).
 */
export function withQuery(uri: string, params: Record<string, string | null | undefined>): string {
  const url = new URL(uri);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(key, value);
  }
  return url.toString();
}
