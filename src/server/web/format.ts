import { daysUntil } from '../../core/index.ts';

/** An href for a URL GitLab gave us: only http(s) links are rendered, so a `javascript:` URL never is. */
export function safeHref(url: string | null | undefined): string | null {
  if (url === null || url === undefined) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.toString() : null;
  } catch {
    return null;
  }
}

/** `2026-05-01 10:04 UTC`: one time zone for everyone, so what the page says matches the logs. */
export function formatTime(iso: string | null): string {
  if (iso === null) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** How long from `start` to `end`: `0.4 s`, `4 s`, `3 min 5 s`, `2 h 10 min`; null when either is missing or unreadable. */
export function durationText(start: string | null, end: string | null): string | null {
  if (start === null || end === null) return null;
  const ms = Date.parse(end) - Date.parse(start);
  if (!Number.isFinite(ms) || ms < 0) return null;
  if (ms < 1000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min${seconds % 60 === 0 ? '' : ` ${seconds % 60} s`}`;
  return `${Math.floor(minutes / 60)} h${minutes % 60 === 0 ? '' : ` ${minutes % 60} min`}`;
}

/** `2027-01-31 (in 12 days)`, `2026-01-01 (expired 3 days ago)`, or `never`. */
export function expiryText(expiresAt: string | null, now: Date): string {
  if (expiresAt === null) return 'never';
  const days = daysUntil(expiresAt, now);
  if (days > 1) return `${expiresAt} (in ${days} days)`;
  if (days === 1) return `${expiresAt} (tomorrow)`;
  if (days === 0) return `${expiresAt} (today)`;
  return `${expiresAt} (expired ${-days} day${days === -1 ? '' : 's'} ago)`;
}

export function plural(count: number, word: string, plural = `${word}s`): string {
  return `${count} ${count === 1 ? word : plural}`;
}

/** A path to come back to after signing in: ours only, never `//evil.example` or `/\evil.example`. */
export function safeNext(next: string | undefined | null): string {
  if (next === undefined || next === null || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  if (/[\x00-\x1f]/.test(next)) return '/';
  return next;
}
