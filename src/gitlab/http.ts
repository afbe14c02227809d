import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { request, type Agent } from 'undici';
import { z } from 'zod';
import { apiUrl, UpstreamError, type Clock, type OutboundPolicy } from '../core/index.ts';
import {
  describeUrl,
  headerValue,
  jsonBody,
  networkFailure,
  notGitLabBody,
  redirectError,
  responseError,
  safeCause,
  type NetworkFailure,
  type RawResponse,
} from './errors.ts';
import { createOutboundAgent, type ResolveAll } from './outbound.ts';
import { isWithinApi, nextLink } from './paging.ts';
import { backoffMs, isIdempotent, retryAfterSeconds } from './retry.ts';

/** The subset of pino's logger the HTTP layer uses; metadata never holds a secret. */
export type HttpLogger = {
  debug(meta: object, message: string): void;
  warn(meta: object, message: string): void;
};

export type GitLabHttpOptions = {
  /** Normalised base URL (core `normaliseBaseUrl`), subpath included, no `/api/v4`. */
  baseUrl: string;
  token?: string;
  /** `pat` sends `PRIVATE-TOKEN`, `oauth` sends `Authorization: Bearer` (GitLab docs: api/rest/authentication.md). */
  tokenKind?: 'pat' | 'oauth';
  caPem?: string | null;
  policy: OutboundPolicy;
  /** Per attempt: connect, headers and body together. Default 15 s. */
  timeoutMs?: number;
  /** Extra attempts after the first, for 429s and (idempotent requests only) 5xx and network errors. Default 3. */
  maxRetries?: number;
  /** A 429 asking for a longer wait fails at once with `rate_limited`. Default 60. */
  maxRetryAfterSeconds?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Reads the time a `Retry-After` date is measured from; default the system clock. */
  clock?: Clock;
  logger?: HttpLogger;
  /** Name resolution, for tests; defaults to the system resolver. */
  resolveAll?: ResolveAll;
  /** Told of every attempt's outcome: the answer's HTTP status, or `network_error` (the GitLab API metrics). */
  onCall?: (status: number | 'network_error') => void;
};

export type Query = Record<string, string | number | boolean | undefined>;
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const MAX_BODY_BYTES = 32 * 1024 * 1024;
// A runaway or hostile `Link` chain stops here: 10,000 pages of 100 is a million objects.
const MAX_PAGES = 10_000;

const silentLogger: HttpLogger = { debug() {}, warn() {} };

/**
 * GETs under way, by the transport that sends them (its outbound policy and resolver) and the clock that times its
 * retries, then by everything else that decides the answer a caller gets: the token and how it is sent, the trusted
 * CA, the retry and timeout settings, and the URL. An identical GET asked for while one is under way (many runs of
 * one connection starting at once) waits for that one's answer instead of asking GitLab again; nothing is kept once
 * the answer is in. A client given its own sleep or randomness (tests) never shares.
 */
const inFlight = new WeakMap<object, WeakMap<object, WeakMap<Clock, Map<string, Promise<RawResponse>>>>>();
const NO_RESOLVER = {};

function inFlightFor(policy: object, resolver: object, clock: Clock): Map<string, Promise<RawResponse>> {
  let byResolver = inFlight.get(policy);
  if (byResolver === undefined) inFlight.set(policy, (byResolver = new WeakMap()));
  let byClock = byResolver.get(resolver);
  if (byClock === undefined) byResolver.set(resolver, (byClock = new WeakMap()));
  let requests = byClock.get(clock);
  if (requests === undefined) byClock.set(clock, (requests = new Map()));
  return requests;
}

function digest(value: string | null | undefined): string {
  return value ? createHash('sha256').update(value).digest('base64') : '';
}
const SYSTEM_CLOCK: Clock = { now: () => new Date() };

/** GitLab REST transport: auth headers, retries, rate limits, paging and error mapping in one place. */
export class GitLabHttp {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #tokenKind: 'pat' | 'oauth';
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #maxRetryAfterSeconds: number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  readonly #clock: Clock;
  readonly #logger: HttpLogger;
  readonly #onCall: (status: number | 'network_error') => void;
  /** GETs under way on this client's transport (null: it never shares), and the key part that is this client's (token, its kind, CA, retry and timeout settings). */
  readonly #inFlight: Map<string, Promise<RawResponse>> | null;
  readonly #sameAnswer: string;

  private constructor(options: GitLabHttpOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#tokenKind = options.tokenKind ?? 'pat';
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#maxRetries = options.maxRetries ?? 3;
    this.#maxRetryAfterSeconds = options.maxRetryAfterSeconds ?? 60;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#logger = options.logger ?? silentLogger;
    this.#onCall = options.onCall ?? (() => {});
    this.#inFlight =
      options.sleep === undefined && options.random === undefined ? inFlightFor(options.policy, options.resolveAll ?? NO_RESOLVER, this.#clock) : null;
    this.#sameAnswer = [this.#tokenKind, digest(options.token), digest(options.caPem), this.#timeoutMs, this.#maxRetries, this.#maxRetryAfterSeconds, ''].join(' ');
    this.#agent = createOutboundAgent({
      policy: options.policy,
      caPem: options.caPem ?? null,
      connectTimeoutMs: this.#timeoutMs,
      ...(options.resolveAll ? { resolveAll: options.resolveAll } : {}),
    });
  }

  static create(options: GitLabHttpOptions): GitLabHttp {
    return new GitLabHttp(options);
  }

  /** `<base>/api/v4<path>?<query>`; undefined query values are left out. */
  url(path: string, query: Query = {}): string {
    const url = new URL(apiUrl(this.baseUrl, path));
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.href;
  }

  /** GET one JSON object, parsed with `schema`. */
  async get<T>(path: string, schema: z.ZodType<T>, query: Query = {}): Promise<T> {
    const response = await this.send('GET', this.url(path, query));
    return this.parse(response, schema);
  }

  /** POST a JSON body. Never retried on 5xx or network errors: GitLab may have acted on it. */
  async post<T>(path: string, schema: z.ZodType<T>, body: unknown = {}): Promise<T> {
    const response = await this.send('POST', this.url(path), body);
    return this.parse(response, schema);
  }

  /**
   * Every element of a list endpoint, page after page, following `Link: rel="next"` — which works the
   * same for offset and keyset paging — and never `x-total`, which GitLab omits past 10,000 records
   * (GitLab docs: api/rest/index.md, "Pagination").
   */
  async *paginate<T>(path: string, query: Query, schema: z.ZodType<T>): AsyncGenerator<T, void, undefined> {
    let url: string | null = this.url(path, query);
    const fetched = new Set<string>();
    while (url !== null) {
      if (fetched.has(url) || fetched.size >= MAX_PAGES) {
        throw new UpstreamError('bad_response', `GitLab's paging for ${describeUrl(url)} does not come to an end.`);
      }
      fetched.add(url);
      const response = await this.send('GET', url);
      const items = this.parse(response, z.array(schema));
      yield* items;
      url = this.#nextPage(response);
    }
  }

  /**
   * One request with retries, returning the final response whatever its status. Throws UpstreamError
   * for network failures, redirects and rate limits that did not recover; callers map other statuses.
   */
  send(method: HttpMethod, url: string, body?: unknown): Promise<RawResponse> {
    const requests = this.#inFlight;
    if (method !== 'GET' || body !== undefined || requests === null) return this.#send(method, url, body);
    const key = this.#sameAnswer + url;
    let answer = requests.get(key);
    if (answer === undefined) {
      answer = this.#send(method, url, body).finally(() => requests.delete(key));
      requests.set(key, answer);
    }
    return answer;
  }

  async #send(method: HttpMethod, url: string, body?: unknown): Promise<RawResponse> {
    const idempotent = isIdempotent(method);
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#attempt(method, url, body);
      if ('failure' in outcome) {
        const { error, transient } = outcome.failure;
        if (idempotent && transient && attempt < this.#maxRetries) {
          await this.#backoff(attempt, { method, url: describeUrl(url), reason: error.reason });
          continue;
        }
        throw error;
      }
      const { response } = outcome;
      if (response.status === 429) {
        await this.#waitForRateLimit(response, attempt);
        continue;
      }
      if (response.status >= 500 && idempotent && attempt < this.#maxRetries) {
        await this.#backoff(attempt, { method, url: describeUrl(url), status: response.status });
        continue;
      }
      if (response.status >= 300 && response.status < 400) throw redirectError(response, this.baseUrl);
      if (response.status >= 500) throw responseError(response, attempt + 1, this.#secrets());
      return response;
    }
  }

  /** A 2xx parsed with `schema`, or the mapped UpstreamError. */
  parse<T>(response: RawResponse, schema: z.ZodType<T>): T {
    if (response.status < 200 || response.status >= 300) throw responseError(response, 1, this.#secrets());
    const json = jsonBody(response);
    if (json === undefined) throw notGitLabBody(response);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new UpstreamError(
        'bad_response',
        `GitLab's answer for ${describeUrl(response.url)} is missing fields forgelink needs; the instance may be too old or customised.`,
        { status: response.status, cause: safeCause(parsed.error, this.#secrets()) },
      );
    }
    return parsed.data;
  }

  /** Closes the connections to the instance. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  #secrets(): string[] {
    return this.#token ? [this.#token] : [];
  }

  #headers(url: string, hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'forgelink' };
    if (hasBody) headers['content-type'] = 'application/json';
    // The token goes only to the configured origin; `send` is never given another, but a header is
    // the one thing that must not leak if that ever changes.
    if (this.#token && new URL(url).origin === new URL(this.baseUrl).origin) {
      if (this.#tokenKind === 'oauth') headers.authorization = `Bearer ${this.#token}`;
      else headers['private-token'] = this.#token;
    }
    return headers;
  }

  async #attempt(
    method: HttpMethod,
    url: string,
    body: unknown,
  ): Promise<{ response: RawResponse } | { failure: NetworkFailure }> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    const hasBody = body !== undefined;
    try {
      const response = await request(url, {
        method,
        headers: this.#headers(url, hasBody),
        ...(hasBody ? { body: JSON.stringify(body) } : {}),
        dispatcher: this.#agent,
        signal,
      });
      const text = await readBounded(response.body, url);
      this.#logger.debug({ method, url: describeUrl(url), status: response.statusCode }, 'gitlab request');
      this.#onCall(response.statusCode);
      return { response: { status: response.statusCode, headers: response.headers, body: text, url } };
    } catch (error) {
      const timedOut = signal.aborted ? this.#timeoutMs : null;
      this.#onCall('network_error');
      return { failure: networkFailure(error, url, this.#secrets(), timedOut) };
    }
  }

  async #waitForRateLimit(response: RawResponse, attempt: number): Promise<void> {
    const asked = retryAfterSeconds(response.headers, this.#clock.now().getTime());
    const where = describeUrl(response.url);
    if (asked !== null && asked > this.#maxRetryAfterSeconds) {
      throw new UpstreamError(
        'rate_limited',
        `GitLab is rate limiting requests and asks to wait ${asked} seconds, longer than forgelink waits ` +
          `(${this.#maxRetryAfterSeconds} s). Try again later.`,
        { status: 429, retryAfterSeconds: asked },
      );
    }
    if (attempt >= this.#maxRetries) {
      throw new UpstreamError(
        'rate_limited',
        `GitLab kept rate limiting requests to ${where} after ${attempt + 1} attempts. Try again later.`,
        { status: 429, ...(asked === null ? {} : { retryAfterSeconds: asked }) },
      );
    }
    const waitMs = asked === null ? backoffMs(attempt, this.#random) : asked * 1000;
    this.#logger.warn({ url: where, waitMs, rateLimitName: headerValue(response.headers, 'ratelimit-name') }, 'gitlab rate limited');
    await this.#sleep(waitMs);
  }

  async #backoff(attempt: number, meta: object): Promise<void> {
    const waitMs = backoffMs(attempt, this.#random);
    this.#logger.warn({ ...meta, attempt: attempt + 1, waitMs }, 'gitlab request retried');
    await this.#sleep(waitMs);
  }

  #nextPage(response: RawResponse): string | null {
    const link = nextLink(headerValue(response.headers, 'link'));
    if (link !== null) {
      const next = new URL(link, response.url);
      if (!isWithinApi(next, this.baseUrl)) {
        // Not followed: the token would go to another host. Failing beats silently returning page one.
        throw new UpstreamError(
          'bad_response',
          `GitLab's next-page link points to ${describeUrl(next.href)}, outside ${this.baseUrl}; forgelink does not ` +
            "follow it. Check the instance's external_url setting.",
        );
      }
      return next.href;
    }
    // Some proxies drop `Link`; offset paging also says `x-next-page` (empty on the last page).
    const page = headerValue(response.headers, 'x-next-page')?.trim();
    if (page && /^\d+$/.test(page)) {
      const next = new URL(response.url);
      if (next.searchParams.get('pagination') === 'keyset') return null;
      next.searchParams.set('page', page);
      return next.href;
    }
    return null;
  }
}

async function readBounded(body: AsyncIterable<Buffer | Uint8Array | string>, url: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      throw new UpstreamError('bad_response', `GitLab's answer for ${describeUrl(url)} is larger than forgelink accepts.`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
