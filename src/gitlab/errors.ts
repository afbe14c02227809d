import { UpstreamError } from '../core/index.ts';
import { ErrorBody } from './schema.ts';

/** A response as the HTTP layer read it; header names are lower case. */
export type RawResponse = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  url: string;
};

/** Where a request went, for messages: origin + path, never the query or a header. */
export function describeUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

export function headerValue(headers: RawResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Replaces every occurrence of the secrets in `text`; defence in depth for messages and causes. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret !== '') out = out.replaceAll(secret, '[REDACTED]');
  return out;
}

/**
 * A copy of a low-level error that keeps only name, code and a scrubbed message (and the same for
 * its causes), so nothing a library attached — sockets, request options, headers — travels on in
 * `UpstreamError.cause` to logs or API responses.
 */
export function safeCause(error: unknown, secrets: readonly string[], depth = 0): Error {
  if (!(error instanceof Error)) return new Error(scrub(String(error), secrets));
  const nested = depth < 4 && error.cause !== undefined ? safeCause(error.cause, secrets, depth + 1) : undefined;
  const copy = new Error(scrub(error.message, secrets), nested ? { cause: nested } : undefined);
  copy.name = error.name;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') Object.assign(copy, { code });
  return copy;
}

function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = current.cause;
  }
  return codes;
}

/**
 * Whether the server closed the connection without an answer (undici's `UND_ERR_SOCKET`, "other side closed"): what a
 * TLS server does with a plain-HTTP request (Node's and OpenSSL's close it; nothing comes back to read).
 */
export function closedWithoutAnswer(error: unknown): boolean {
  return error instanceof UpstreamError && error.reason === 'unreachable' && codesOf(error.cause).includes('UND_ERR_SOCKET');
}

function upstreamInChain(error: unknown): UpstreamError | null {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof UpstreamError) return current;
    current = current.cause;
  }
  return null;
}

// Node's TLS verification failures (OpenSSL X509_V_ERR_* names and Node's own ERR_TLS_CERT_*).
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Network failures worth another attempt for an idempotent request. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

export type NetworkFailure = { error: UpstreamError; transient: boolean };

/** Maps an error thrown while sending a request or reading its body. */
export function networkFailure(
  error: unknown,
  url: string,
  secrets: readonly string[],
  timedOutAfterMs: number | null,
): NetworkFailure {
  // undici's fetch wraps what the connector threw (the outbound policy's refusal) in TypeError('fetch failed').
  const upstream = upstreamInChain(error);
  if (upstream !== null) return { error: upstream, transient: false };
  const { host } = new URL(url);
  const cause = safeCause(error, secrets);
  if (timedOutAfterMs !== null) {
    const seconds = Math.round(timedOutAfterMs / 100) / 10;
    return {
      error: new UpstreamError(
        'unreachable',
        `${host} did not answer within ${seconds} seconds. Check the URL, and whether a firewall or proxy is in the way.`,
        { cause },
      ),
      transient: true,
    };
  }
  const codes = codesOf(error);
  const certificate = codes.find((code) => CERTIFICATE_CODES.has(code));
  if (certificate !== undefined) {
    const detail =
      certificate === 'ERR_TLS_CERT_ALTNAME_INVALID' || certificate === 'HOSTNAME_MISMATCH'
        ? `its certificate is not valid for the name ${new URL(url).hostname}`
        : certificate === 'CERT_HAS_EXPIRED'
          ? 'its certificate has expired'
          : 'its certificate is not signed by an authority forgelink trusts';
    return {
      error: new UpstreamError(
        'certificate',
        `Could not verify the TLS certificate of ${host}: ${detail} (${certificate}). ` +
          'If the instance uses a private certificate authority, add that authority\'s CA certificate to the connection.',
        { cause },
      ),
      transient: false,
    };
  }
  if (codes.some((code) => code.startsWith('ERR_SSL_') || code === 'EPROTO')) {
    return {
      error: new UpstreamError(
        'unreachable',
        `Could not complete a TLS handshake with ${host}. Check that the URL's scheme (https://) and port are right.`,
        { cause },
      ),
      transient: false,
    };
  }
  if (codes.includes('ENOTFOUND')) {
    return {
      error: new UpstreamError(
        'unreachable',
        `Could not resolve ${new URL(url).hostname}. Check the URL for typos, and that this server can resolve the name.`,
        { cause },
      ),
      transient: false,
    };
  }
  if (codes.includes('ECONNREFUSED')) {
    return {
      error: new UpstreamError(
        'unreachable',
        `${host} refused the connection. Check the URL and port, and that GitLab is running.`,
        { cause },
      ),
      transient: true,
    };
  }
  const code = codes[0] ?? 'network error';
  return {
    error: new UpstreamError(
      'unreachable',
      `Could not reach ${host} (${code}). Check the URL, and whether a firewall or proxy is in the way.`,
      { cause },
    ),
    transient: codes.some((c) => TRANSIENT_CODES.has(c)),
  };
}

/** The JSON body, or undefined when the response is not JSON (HTML from a proxy, plain text…). */
export function jsonBody(response: RawResponse): unknown {
  const type = headerValue(response.headers, 'content-type') ?? '';
  if (!/\bjson\b/i.test(type)) return undefined;
  try {
    return JSON.parse(response.body) as unknown;
  } catch {
    return undefined;
  }
}

/** `error="…"` and `error_description="…"` from an RFC 6750 `WWW-Authenticate: Bearer …` header. */
function bearerChallenge(headers: RawResponse['headers']): { error?: string; description?: string } {
  const header = headerValue(headers, 'www-authenticate') ?? '';
  const error = /\berror="([^"]*)"/.exec(header)?.[1];
  const description = /\berror_description="([^"]*)"/.exec(header)?.[1];
  return { ...(error ? { error } : {}), ...(description ? { description } : {}) };
}

/** GitLab's `message` is a string, a list, or `{field: [problems]}` for validation errors. */
function gitlabMessage(body: ErrorBody): string | null {
  const { message } = body;
  let text: string | null = null;
  if (typeof message === 'string') text = message;
  else if (Array.isArray(message)) text = message.map(String).join('; ');
  else if (message !== null && typeof message === 'object') {
    text = Object.entries(message)
      .map(([field, problems]) => `${field} ${Array.isArray(problems) ? problems.join(', ') : String(problems)}`)
      .join('; ');
  } else if (body.error_description) text = body.error_description;
  else if (body.error) text = body.error;
  if (text === null) return null;
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export function notGitLabBody(response: RawResponse): UpstreamError {
  const type = headerValue(response.headers, 'content-type')?.split(';')[0]?.trim() || 'no content type';
  return new UpstreamError(
    'not_gitlab',
    `${describeUrl(response.url)} answered ${response.status} with ${type} instead of GitLab's JSON API. ` +
      'Check that the URL is the GitLab instance, including its subpath if it is served under one (https://host/gitlab).',
    { status: response.status },
  );
}

/** Maps a 3xx: GitLab's API never redirects, so one means the base URL is not where the API lives. */
export function redirectError(response: RawResponse, baseUrl: string): UpstreamError {
  const location = headerValue(response.headers, 'location') ?? '';
  let target: URL | null = null;
  try {
    target = new URL(location, response.url);
  } catch {
    target = null;
  }
  const from = describeUrl(response.url);
  if (target === null) {
    return new UpstreamError('not_gitlab', `${from} answered with a redirect (${response.status}) that has no usable target.`, {
      status: response.status,
    });
  }
  const to = describeUrl(target.href);
  if (target.origin !== new URL(baseUrl).origin) {
    return new UpstreamError(
      'not_gitlab',
      `${from} redirected to ${to}, on another host. forgelink does not follow redirects away from the configured ` +
        `address; if GitLab is served at ${target.origin}, use that as the GitLab URL.`,
      { status: response.status },
    );
  }
  return new UpstreamError(
    'not_gitlab',
    `${from} redirected to ${to}. GitLab's API does not redirect, so the GitLab URL is probably not where the API ` +
      'is served (check the subpath), or a sign-in proxy sits in front of it.',
    { status: response.status },
  );
}

/** Maps a non-2xx, non-3xx response that did not recover (GitLab docs: api/rest/troubleshooting.md). */
export function responseError(response: RawResponse, attempts: number, secrets: readonly string[]): UpstreamError {
  const { status } = response;
  const where = describeUrl(response.url);
  if (status >= 500) {
    return new UpstreamError(
      'server_error',
      `GitLab answered ${status} for ${where}${attempts > 1 ? ` on ${attempts} attempts` : ''}. ` +
        'The instance may be down or overloaded; try again later.',
      { status },
    );
  }
  const json = jsonBody(response);
  if (json === undefined) return notGitLabBody(response);
  const parsed = ErrorBody.safeParse(json);
  const body: ErrorBody = parsed.success ? parsed.data : {};
  const challenge = bearerChallenge(response.headers);
  const oauthError = body.error ?? challenge.error;
  const description = body.error_description ?? challenge.description ?? '';

  if (status === 401) {
    // GitLab gives expired and revoked tokens the same status and error code; only the description
    // tells them apart. These are the fixed phrases of API::APIGuard#oauth2_bearer_token_error_handler
    // (lib/api/api_guard.rb): "Token is expired. You can either do re-authorization or token refresh."
    // and "Token was revoked. You have to re-authorize from the user." They apply to personal access
    // tokens as well as OAuth tokens.
    if (oauthError === 'invalid_token' && description.startsWith('Token is expired')) {
      return new UpstreamError(
        'token_expired',
        'The GitLab token has expired. Update the connection with a new token, or reconnect the account.',
        { status },
      );
    }
    if (oauthError === 'invalid_token' && description.startsWith('Token was revoked')) {
      return new UpstreamError(
        'token_revoked',
        'The GitLab token was revoked. Update the connection with a new token, or reconnect the account.',
        { status },
      );
    }
    return new UpstreamError(
      'token_invalid',
      `GitLab at ${new URL(response.url).origin} did not accept the token (401 Unauthorized). Check that it was copied ` +
        'completely and belongs to this instance.',
      { status },
    );
  }
  if (status === 403 && oauthError === 'insufficient_scope') {
    const scopes = Array.isArray(body.scope) ? body.scope : (body.scope ?? '').split(/\s+/).filter(Boolean);
    const needs = scopes.length > 0 ? ` It needs one of these scopes: ${scopes.join(', ')}.` : '';
    return new UpstreamError(
      'insufficient_scope',
      `The token lacks the scope GitLab requires for ${where}.${needs} Create a token with the missing scope.`,
      { status },
    );
  }
  const gitlabSaid = gitlabMessage(body);
  const said = gitlabSaid === null ? null : scrub(gitlabSaid, secrets);
  const detail = said ? `: ${said}` : '';
  if (status === 403) {
    return new UpstreamError('forbidden', `GitLab refused ${where} (403 Forbidden${detail}).`, { status });
  }
  if (status === 404) {
    return new UpstreamError(
      'not_found',
      `GitLab answered 404 for ${where}: it does not exist, or the account may not see it.`,
      { status },
    );
  }
  return new UpstreamError('bad_response', `GitLab refused ${where} (${status}${detail}).`, { status });
}
