import type pg from 'pg';
import type { RunSignals } from '../core/index.ts';

/** The PostgreSQL channel of run messages: `{"kind":"queued"}` or `{"kind":"cancel","runId":"…"}`. */
export const RUN_CHANNEL = 'forgelink_runs';

const RECONNECT_MS = 1000;

type Handlers = { queued(): void; cancel(runId: string): void };

/**
 * Run messages over PostgreSQL LISTEN/NOTIFY. The listener holds one connection of the pool for the process's life
 * and comes back after a lost connection; a message sent meanwhile is missed, which is why workers also poll the
 * queue and the runs' cancel requests (runs/worker.ts).
 */
export function createPgRunSignals(options: { pool: pg.Pool; onError?: (error: unknown) => void }): RunSignals {
  const { pool } = options;
  const subscribers = new Set<Handlers>();
  let client: pg.PoolClient | null = null;
  let connecting: Promise<void> | null = null;
  let closed = false;

  function deliver(payload: string | undefined): void {
    let message: { kind?: unknown; runId?: unknown };
    try {
      message = JSON.parse(payload ?? '') as typeof message;
    } catch {
      return;
    }
    for (const handlers of subscribers) {
      if (message.kind === 'queued') handlers.queued();
      else if (message.kind === 'cancel' && typeof message.runId === 'string') handlers.cancel(message.runId);
    }
  }

  async function listen(): Promise<void> {
    const next = await pool.connect();
    const lost = (error: unknown) => {
      if (client !== next) return;
      client = null;
      next.release(true);
      if (closed) return;
      options.onError?.(error);
      setTimeout(() => void ensureListening().catch(options.onError), RECONNECT_MS).unref();
      // Whatever was sent while no one listened: the subscribers look for themselves.
      for (const handlers of subscribers) handlers.queued();
    };
    next.on('error', lost);
    next.on('notification', (message) => deliver(message.payload));
    try {
      await next.query(`LISTEN ${RUN_CHANNEL}`);
    } catch (error) {
      next.release(true);
      throw error;
    }
    client = next;
  }

  function ensureListening(): Promise<void> {
    if (client !== null || closed) return Promise.resolve();
    connecting ??= listen().finally(() => {
      connecting = null;
    });
    return connecting;
  }

  async function notify(message: object): Promise<void> {
    await pool.query('SELECT pg_notify($1, $2)', [RUN_CHANNEL, JSON.stringify(message)]);
  }

  return {
    queued: () => notify({ kind: 'queued' }),
    cancel: (runId) => notify({ kind: 'cancel', runId }),
    async subscribe(handlers) {
      subscribers.add(handlers);
      await ensureListening();
      return async () => {
        subscribers.delete(handlers);
      };
    },
    async close() {
      closed = true;
      subscribers.clear();
      await connecting?.catch(() => {});
      const held = client;
      client = null;
      if (held !== null) {
        await held.query(`UNLISTEN ${RUN_CHANNEL}`).catch(() => {});
        held.release();
      }
    },
  };
}
