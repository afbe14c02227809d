import {
  LIVE_STATUSES,
  daysUntil,
  expiryCountdown,
  type Clock,
  type Connection,
  type ConnectionEvent,
  type ConnectionEventStore,
  type ConnectionNotification,
  type ConnectionStatus,
  type ConnectionStore,
  type Notifier,
  type UserStore,
} from '../core/index.ts';

/**
 * Days before a token's expiry date at which the operator is told, most urgent first: a week ahead (when the
 * dashboard's `expires_soon` warning is about to show, so there is time to create a token), and the day before.
 */
export const EXPIRY_NOTICE_DAYS = [1, 7] as const;

/**
 * Transitions older than this are never sent: they were recorded while no webhook was configured (or while no
 * monitor ran), and a receiver switched on today should not get last month's news.
 */
export const TRANSITION_NOTICE_WINDOW_MS = 24 * 3600_000;


/** The threshold a token `days` before its expiry has crossed (the most urgent one), or null when none yet. */
export function expiryThreshold(days: number): number | null {
  if (days < 0) return null;
  return EXPIRY_NOTICE_DAYS.find((threshold) => days <= threshold) ?? null;
}

/** A connection as a notification shows it: no token, no CA, nothing a receiver could misuse. */
export function notifiedConnection(connection: Connection, status: ConnectionStatus = connection.status): ConnectionNotification['connection'] {
  return {
    id: connection.id,
    label: connection.label,
    host: connection.host,
    account: connection.account,
    expiresAt: connection.expiresAt,
    status,
  };
}

export type ConnectionNoticesDeps = {
  store: ConnectionStore;
  events: ConnectionEventStore;
  users: Pick<UserStore, 'listUsers'>;
  notifier: Notifier;
  clock: Clock;
};

/**
 * What the monitor tells the operator's webhook. Both kinds are claimed in the database before they are handed to
 * the notifier — a notice key by its primary key, a transition by a conditional update — so a restart, or a second
 * process that takes the monitor over, never sends one twice. The price is at most once: a delivery that fails
 * after its retries is logged, not sent again.
 */
export function createConnectionNotices(deps: ConnectionNoticesDeps) {
  const { store, events, notifier, clock } = deps;

  /** Owner names for one batch: read once, and only when there is something to send. */
  function ownerNames(): (ownerId: string) => Promise<string | null> {
    let names: Promise<Map<string, string>> | null = null;
    return async (ownerId) => {
      names ??= deps.users.listUsers().then((users) => new Map(users.map((user) => [user.id, user.name])));
      return (await names).get(ownerId) ?? null;
    };
  }

  /** `connection.expiring` for each connection that crossed a threshold since the last notice about its expiry date. */
  async function expiring(): Promise<number> {
    const now = clock.now();
    const horizon = new Date(now.getTime() + Math.max(...EXPIRY_NOTICE_DAYS) * 86_400_000).toISOString().slice(0, 10);
    const nameOf = ownerNames();
    let sent = 0;
    for (const connection of await store.listAllConnections({ expiringBy: horizon, statuses: LIVE_STATUSES })) {
      if (connection.expiresAt === null) continue;
      const days = daysUntil(connection.expiresAt, now);
      const threshold = expiryThreshold(days);
      if (threshold === null) continue;
      // Keyed by the expiry date too: a rotated token with a new date is warned about again.
      const key = `expiring:${threshold}:${connection.expiresAt}`;
      if (!(await events.claimNotice(connection.id, key, now.toISOString()))) continue;
      notifier.notify({
        event: 'connection.expiring',
        at: now.toISOString(),
        connection: notifiedConnection(connection),
        ownerName: await nameOf(connection.userId),
        reason: `The token ${expiryCountdown(connection.expiresAt, now)} (${connection.expiresAt}). Create a new one and reconnect.`,
        daysLeft: days,
        thresholdDays: threshold,
      });
      sent++;
    }
    return sent;
  }

  /** `connection.status_changed` for every recorded transition not sent yet, whoever made it (monitor, check, run). */
  async function transitions(): Promise<number> {
    const now = clock.now();
    const since = new Date(now.getTime() - TRANSITION_NOTICE_WINDOW_MS).toISOString();
    const nameOf = ownerNames();
    let sent = 0;
    for (const event of await events.unnotified(since)) {
      if (!(await events.claimNotification(event.id, now.toISOString()))) continue;
      const connection = await store.getConnection(event.ownerId, event.connectionId);
      // Disconnected since: there is nobody left to warn about it.
      if (connection === null) continue;
      notifier.notify(statusNotification(event, connection, await nameOf(event.ownerId)));
      sent++;
    }
    return sent;
  }

  return { expiring, transitions };
}

function statusNotification(event: ConnectionEvent, connection: Connection, ownerName: string | null): ConnectionNotification {
  return {
    event: 'connection.status_changed',
    at: event.at,
    // The status this event moved to: later transitions get their own notification.
    connection: notifiedConnection(connection, event.to),
    ownerName,
    reason: event.reason ?? (event.to === 'active' ? 'GitLab accepts the token again.' : null),
    previousStatus: event.from,
  };
}
