/**
 * The hop-by-hop headers (RFC 9110, section 7.6.1): they describe one connection, so a proxy never forwards them.
 * The run's egress proxy drops these; the credential broker, which makes a new request upstream, drops `expect` and
 * `host` as well.
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
