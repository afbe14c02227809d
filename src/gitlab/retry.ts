import { headerValue, type RawResponse } from './errors.ts';

/**
 * Seconds a 429 asks us to wait: `Retry-After` (GitLab sends seconds; an HTTP date is accepted too),
 * else `RateLimit-Reset` (Unix seconds), else null. GitLab docs: security/rate_limits.md, "Response headers".
 */
export function retryAfterSeconds(headers: RawResponse['headers'], now: number): number | null {
  const retryAfter = headerValue(headers, 'retry-after')?.trim();
  if (retryAfter) {
    if (/^\d+$/.test(retryAfter)) return Number(retryAfter);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - now) / 1000));
  }
  const reset = headerValue(headers, 'ratelimit-reset')?.trim();
  if (reset && /^\d+$/.test(reset)) return Math.max(0, Number(reset) - Math.floor(now / 1000));
  return null;
}

/** Exponential backoff with jitter: 0.5–1 × min(cap, base·2^attempt), so parallel clients spread out. */
export function backoffMs(attempt: number, random: () => number, baseMs = 500, capMs = 8_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(ceiling * (0.5 + random() * 0.5));
}

export function isIdempotent(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}
