import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  LIVE_STATUSES,
  NotFoundError,
  UpstreamError,
  type Clock,
  type Connection,
  type ConnectionEventStore,
  type ConnectionStore,
  type ConnectionView,
  type LeaseStore,
  type Notifier,
  type UserStore,
} from '../core/index.ts';
import { createConnectionNotices } from './notices.ts';

/** The one lease every forgelink process sharing a database competes for; its holder is the only one that sweeps. */
export const MONITOR_LEASE = 'connection-health-monitor';


export type MonitorLogger = {
  debug(meta: object, message: string): void;
  info(meta: object, message: string): void;
  warn(meta: object, message: string): void;
  error(meta: object, message: string): void;
};

export type HealthMonitorDeps = {
  /** Lists connections across users. */
  store: ConnectionStore;
  /**
   * Re-validates one connection against GitLab and records its status: the connection service's `check`, called
   * as the `system` actor with reason `monitor`, which writes the audit entries (`connection.checked`, and
   * `connection.status_changed` when the status moved).
   */
  check: (userId: string, id: string) => Promise<ConnectionView>;
  events: ConnectionEventStore;
  leases: LeaseStore;
  users: Pick<UserStore, 'listUsers'>;
  /** The operator's webhook; null when none is configured (then nothing is claimed for notification either). */
  notifier: Notifier | null;
  clock: Clock;
  logger: MonitorLogger;
  /** A connection is re-checked once its last check is this old (plus its jitter). */
  intervalMs: number;
  /** Up to this much more, per connection, so connections made together are not all checked together. */
  jitterMs: number;
  /** How often the monitor wakes; default a quarter of the interval, from 1 s to 1 min. */
  tickMs?: number;
  /** How long the lease lasts without renewal; default 5 min or three wakes, whichever is longer. */
  leaseMs?: number;
  /** The first pause of an instance that rate limits us, doubled at each further 429; default 1 min. */
  rateLimitBackoffMs?: number;
  /** The longest such pause; default the interval. */
  rateLimitMaxBackoffMs?: number;
  /** Names this monitor in the lease table; default host, pid and a random suffix. */
  holder?: string;
};

/** What one tick did; tests read it. */
export type TickReport = {
  /** Whether this process held the monitor lease (only then does it do anything). */
  leader: boolean;
  checked: number;
  /** Checks that found the status changed. */
  changed: number;
  /** Connections due but not checked: their instance is rate limiting us. */
  deferred: number;
  /** Notifications handed to the webhook. */
  notified: number;
};

/**
 * The pause after the `strikes`-th consecutive rate limit from one instance: doubling from `baseMs` up to `capMs`,
 * and never shorter than what GitLab asked for in Retry-After (GitLab docs: security/rate_limits.md).
 */
export function rateLimitPauseMs(strikes: number, askedMs: number, baseMs: number, capMs: number): number {
  const doubling = Math.min(capMs, baseMs * 2 ** Math.max(0, strikes - 1));
  return Math.max(askedMs, doubling);
}

/**
 * A connection's share of the jitter, from a hash of its id: the same in every process and at every wake (so
 * "due" does not flicker and a new lease holder agrees with the old one), and spread evenly across connections.
 */
export function jitterOf(connectionId: string, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  return (createHash('sha256').update(connectionId).digest().readUInt32BE(0) / 2 ** 32) * jitterMs;
}

/**
 * Keeps every connection's status current without anyone watching. Each process runs one, but only the holder of
 * the monitor lease acts, so however many processes share the database, each connection is checked once per
 * interval and each notification is sent once. The holder wakes every `tickMs`, renews its lease, checks the
 * connections whose last check (by anyone: a user's "Check now" counts) is older than the interval, one at a time
 * — gentle on GitLab, and a rate limit stops the sweep for that instance at once — and then sends what the
 * operator's webhook should hear. A check records a changed status, and its transition, through the connection
 * store, and its audit entries through `check`.
 */
export function createHealthMonitor(deps: HealthMonitorDeps) {
  const { store, clock, logger, intervalMs, jitterMs } = deps;
  const tickMs = deps.tickMs ?? Math.min(60_000, Math.max(1_000, Math.round(intervalMs / 4)));
  const leaseMs = deps.leaseMs ?? Math.max(5 * 60_000, 3 * tickMs);
  const backoffBaseMs = deps.rateLimitBackoffMs ?? 60_000;
  const backoffCapMs = Math.max(backoffBaseMs, deps.rateLimitMaxBackoffMs ?? intervalMs);
  const holder = deps.holder ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const notices = deps.notifier === null ? null : createConnectionNotices({ ...deps, notifier: deps.notifier });

  /** Per instance (`host:port`): paused until, and how many rate limits in a row. */
  const limited = new Map<string, { until: number; strikes: number }>();
  /** Connections whose check failed inside forgelink (not at GitLab): left alone for an interval, not retried each wake. */
  const failing = new Map<string, number>();
  let leaseRenewedAt = 0;
  let leading = false;
  let running: Promise<TickReport> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;

  async function holdLease(): Promise<boolean> {
    const now = clock.now().getTime();
    const held = await deps.leases.acquire(MONITOR_LEASE, holder, {
      now: new Date(now).toISOString(),
      expiresAt: new Date(now + leaseMs).toISOString(),
    });
    if (held) leaseRenewedAt = now;
    // Said once per change, not at every wake: which process does the checking is what an operator looks for.
    if (held && !leading) logger.info({ holder }, 'connection monitor holds the lease: this process checks connections');
    if (!held && leading) logger.warn({ holder }, 'connection monitor lost its lease; another process checks connections');
    leading = held;
    return held;
  }

  /** Renews the lease when a third of it has passed, so a long sweep never outlives it; false once it is lost. */
  async function keepLease(): Promise<boolean> {
    if (clock.now().getTime() - leaseRenewedAt < leaseMs / 3) return true;
    return holdLease();
  }

  function instanceOf(connection: Connection): string {
    return new URL(connection.baseUrl).host;
  }

  function isDue(connection: Connection, now: number): boolean {
    if ((failing.get(connection.id) ?? 0) > now) return false;
    return Date.parse(connection.checkedAt) + intervalMs + jitterOf(connection.id, jitterMs) <= now;
  }

  /** Checks one connection; false when its instance is rate limiting us. */
  async function checkOne(connection: Connection, report: TickReport): Promise<boolean> {
    const instance = instanceOf(connection);
    let after: ConnectionView;
    try {
      after = await deps.check(connection.userId, connection.id);
    } catch (error) {
      if (error instanceof UpstreamError && error.reason === 'rate_limited') {
        const now = clock.now().getTime();
        const strikes = (limited.get(instance)?.strikes ?? 0) + 1;
        const pauseMs = rateLimitPauseMs(strikes, (error.retryAfterSeconds ?? 0) * 1000, backoffBaseMs, backoffCapMs);
        limited.set(instance, { until: now + pauseMs, strikes });
        logger.warn({ instance, strikes, pauseMs, retryAfterSeconds: error.retryAfterSeconds ?? null }, 'GitLab rate limits the connection monitor; pausing checks of this instance');
        return false;
      }
      // Disconnected since the sweep listed it.
      if (error instanceof NotFoundError) return true;
      failing.set(connection.id, clock.now().getTime() + intervalMs);
      logger.error({ connectionId: connection.id, err: error }, 'connection monitor could not check a connection');
      return true;
    }
    limited.delete(instance);
    failing.delete(connection.id);
    report.checked++;
    logger.debug({ connectionId: connection.id, status: after.status, holder }, 'connection checked');
    if (after.status !== connection.status) {
      report.changed++;
      logger.info({ connectionId: connection.id, from: connection.status, to: after.status }, 'connection status changed');
    }
    return true;
  }

  async function checkDue(report: TickReport): Promise<void> {
    const now = clock.now().getTime();
    // The SQL filter is the loose bound (jitter only adds); isDue applies each connection's own share.
    const candidates = await store.listAllConnections({ checkedBefore: new Date(now - intervalMs).toISOString(), statuses: LIVE_STATUSES });
    for (const connection of candidates) {
      if (stopped) return;
      if (!isDue(connection, now)) continue;
      const pause = limited.get(instanceOf(connection));
      if (pause !== undefined && pause.until > clock.now().getTime()) {
        report.deferred++;
        continue;
      }
      if (!(await keepLease())) return;
      if (!(await checkOne(connection, report))) report.deferred++;
    }
  }

  async function sweep(): Promise<TickReport> {
    const report: TickReport = { leader: false, checked: 0, changed: 0, deferred: 0, notified: 0 };
    if (!(await holdLease())) return report;
    report.leader = true;
    await checkDue(report);
    if (notices !== null && !stopped) {
      // After the checks, so a transition they found is sent in this same tick.
      report.notified += await notices.expiring();
      report.notified += await notices.transitions();
    }
    return report;
  }

  /** One wake: does nothing unless this process holds (or can take) the lease. Concurrent calls share one run. */
  function tick(): Promise<TickReport> {
    running ??= sweep().finally(() => {
      running = null;
    });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      tick()
        .catch((error: unknown) => logger.error({ err: error }, 'connection monitor tick failed'))
        .finally(schedule);
    }, tickMs);
    // The monitor alone never keeps the process alive.
    timer.unref();
  }

  return {
    tick,
    /** Wakes every `tickMs` until `stop()`. */
    start(): void {
      stopped = false;
      logger.info({ intervalMs, jitterMs, tickMs, holder }, 'connection monitor started');
      schedule();
    },
    /** Stops waking, waits for a running tick, and gives the lease up so another process can take over at once. */
    async stop(): Promise<void> {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      await running?.catch(() => undefined);
      await deps.leases.release(MONITOR_LEASE, holder);
      leading = false;
    },
  };
}

export type HealthMonitor = ReturnType<typeof createHealthMonitor>;
