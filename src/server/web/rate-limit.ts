/**
 * Counts failed attempts per key (user name + client address) in a sliding window. Held in this process's
 * memory: a restart forgets it, and several forgelink processes each count on their own — enough to turn
 * password guessing from thousands of tries a minute into a handful per quarter hour.
 */
export type AttemptLimiter = {
  /** Milliseconds until `key` may try again; 0 when it may now. */
  retryAfterMs(key: string): number;
  fail(key: string): void;
  /** A success clears the key's failures. */
  succeed(key: string): void;
};

export type AttemptLimiterOptions = {
  maxFailures: number;
  windowMs: number;
  now?: () => number;
  /** Keys kept at most; the stalest go first, so a flood of made-up names cannot exhaust memory. */
  maxKeys?: number;
};

export function createAttemptLimiter(options: AttemptLimiterOptions): AttemptLimiter {
  const now = options.now ?? Date.now;
  const maxKeys = options.maxKeys ?? 10_000;
  // Insertion order doubles as staleness order: a key is re-inserted whenever it fails.
  const failures = new Map<string, number[]>();

  function recent(key: string): number[] {
    const cutoff = now() - options.windowMs;
    const times = (failures.get(key) ?? []).filter((time) => time > cutoff);
    if (times.length === 0) failures.delete(key);
    else failures.set(key, times);
    return times;
  }

  return {
    retryAfterMs(key) {
      const times = recent(key);
      if (times.length < options.maxFailures) return 0;
      const oldestCounted = times[times.length - options.maxFailures] as number;
      return Math.max(1, oldestCounted + options.windowMs - now());
    },
    fail(key) {
      const times = recent(key);
      failures.delete(key);
      failures.set(key, [...times, now()]);
      while (failures.size > maxKeys) {
        const stalest = failures.keys().next().value as string;
        failures.delete(stalest);
      }
    },
    succeed(key) {
      failures.delete(key);
    },
  };
}
