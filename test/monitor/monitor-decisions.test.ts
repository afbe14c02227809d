import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countdownText } from '../../src/cli/format.ts';
import { jitterOf, rateLimitPauseMs } from '../../src/monitor/health-monitor.ts';
import { expiryThreshold } from '../../src/monitor/notices.ts';
import { expiryCountdown } from '../../src/core/index.ts';

const MINUTE = 60_000;

for (const [strikes, askedMs, expected] of [
  [1, 0, MINUTE],
  [2, 0, 2 * MINUTE],
  [3, 0, 4 * MINUTE],
  [10, 0, 60 * MINUTE],
  [1, 90_000, 90_000],
  [3, 90_000, 4 * MINUTE],
  [1, 2 * 3600_000, 2 * 3600_000],
] as const) {
  test(`rate limit #${strikes}, GitLab asking ${askedMs / 1000} s: pause ${expected / 1000} s (doubling from 1 min, capped at the hour, never under Retry-After)`, () => {
    assert.equal(rateLimitPauseMs(strikes, askedMs, MINUTE, 60 * MINUTE), expected);
  });
}

test('a connection’s jitter is stable, within bounds, and spread across connections', () => {
  assert.equal(jitterOf('con_a', 0), 0);
  assert.equal(jitterOf('con_a', MINUTE), jitterOf('con_a', MINUTE));
  const shares = Array.from({ length: 200 }, (_, index) => jitterOf(`con_${index}`, MINUTE));
  assert.ok(shares.every((share) => share >= 0 && share < MINUTE));
  assert.ok(shares.some((share) => share < MINUTE / 4) && shares.some((share) => share > (3 * MINUTE) / 4));
});

for (const [days, expected] of [
  [30, null],
  [8, null],
  [7, 7],
  [3, 7],
  [2, 7],
  [1, 1],
  [0, 1],
  [-1, null],
] as const) {
  test(`${days} days before expiry the notice threshold crossed is ${expected}`, () => assert.equal(expiryThreshold(days), expected));
}

const now = new Date('2026-05-10T15:00:00Z');
for (const [connection, expected] of [
  [{ expiresAt: '2026-05-15', kind: 'pat' }, 'expires in 5 days'],
  [{ expiresAt: '2026-05-11', kind: 'pat' }, 'expires tomorrow'],
  [{ expiresAt: '2026-05-10', kind: 'pat' }, 'expires today'],
  [{ expiresAt: '2026-05-09', kind: 'pat' }, 'expired 1 day ago'],
  [{ expiresAt: '2026-05-01', kind: 'pat' }, 'expired 9 days ago'],
  [{ expiresAt: null, kind: 'pat' }, 'no expiry'],
  [{ expiresAt: null, kind: 'oauth' }, null],
] as const) {
  test(`countdown for ${connection.kind} expiring ${connection.expiresAt}: ${expected}`, () => {
    assert.equal(countdownText(connection, now), expected);
    if (connection.expiresAt !== null) assert.equal(expiryCountdown(connection.expiresAt, now), expected);
  });
}
