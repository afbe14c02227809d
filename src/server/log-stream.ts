import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { TERMINAL_STATUSES } from '../core/index.ts';
import type { RunService } from '../runs/index.ts';
import { parseQuery } from './validate.ts';

const LogQuery = z.object({ after: z.coerce.number().int().min(0).optional() });

const POLL_MS = 250;

/**
 * A run's log after `?after=<seq>` (or `Last-Event-ID`): JSON, or live server-sent events when the client
 * asks for `text/event-stream` (`log` per entry, then `end` with the finished run). Shared by the API
 * (Bearer key) and the dashboard (session); the caller has established who `userId` is.
 */
export async function runLogResponse(c: Context, runs: RunService, userId: string, id: string): Promise<Response> {
  const { after } = parseQuery(c, LogQuery);
  const lastEventId = Number(c.req.header('last-event-id'));
  let cursor = Number.isInteger(lastEventId) && lastEventId > 0 ? lastEventId : (after ?? 0);
  // Checks ownership (404 for another user's run) before a stream is opened.
  const first = await runs.log(userId, id, cursor);
  if (!(c.req.header('accept') ?? '').includes('text/event-stream')) {
    const last = first.entries.at(-1);
    return c.json({ run: first.run, entries: first.entries, next: last?.seq ?? cursor });
  }
  return streamSSE(c, async (stream) => {
    let batch = first;
    let open = true;
    stream.onAbort(() => {
      open = false;
    });
    // Reads the stored log, so it works whichever process executes the run.
    while (open) {
      for (const entry of batch.entries) {
        await stream.writeSSE({ id: String(entry.seq), event: 'log', data: JSON.stringify(entry) });
        cursor = entry.seq;
      }
      if (TERMINAL_STATUSES.includes(batch.run.status) && batch.entries.length === 0) {
        await stream.writeSSE({ event: 'end', data: JSON.stringify(batch.run) });
        return;
      }
      if (batch.entries.length === 0) await stream.sleep(POLL_MS);
      batch = await runs.log(userId, id, cursor);
    }
  });
}
