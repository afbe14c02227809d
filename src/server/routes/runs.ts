import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import type { RunService } from '../../runs/index.ts';
import type { AuthVariables } from '../auth.ts';
import { parseBody, parseQuery } from '../validate.ts';

export const StartRunBody = z.object({
  connectionId: z.string().min(1).describe('the connection whose token the agent gets'),
  project: z.string().min(1).describe('project path (group/sub/app) or numeric id'),
  branch: z.string().optional().describe('branch to clone; default: the project\'s default branch'),
  command: z.array(z.string()).min(1).describe('the agent command and its arguments'),
  allowHosts: z.array(z.string()).optional().describe('extra origins (host:port) the sandbox may reach, where the operator permits'),
  timeoutSeconds: z.number().int().positive().optional(),
});

const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).optional() });
const LogQuery = z.object({ after: z.coerce.number().int().min(0).optional() });

const POLL_MS = 250;

/** `/api/v1/runs`: every handler sees only the signed-in user's runs. */
export function runRoutes(runs: RunService) {
  return new Hono<{ Variables: AuthVariables }>()
    .post('/', async (c) => c.json(await runs.start(c.var.user.id, await parseBody(c, StartRunBody)), 201))
    .get('/', async (c) => {
      const { limit } = parseQuery(c, ListQuery);
      return c.json({ runs: await runs.list(c.var.user.id, limit) });
    })
    .get('/:id', async (c) => c.json(await runs.get(c.var.user.id, c.req.param('id'))))
    .post('/:id/cancel', async (c) => c.json(await runs.cancel(c.var.user.id, c.req.param('id')), 202))
    .get('/:id/log', async (c) => {
      const userId = c.var.user.id;
      const id = c.req.param('id');
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
          if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(batch.run.status) && batch.entries.length === 0) {
            await stream.writeSSE({ event: 'end', data: JSON.stringify(batch.run) });
            return;
          }
          if (batch.entries.length === 0) await stream.sleep(POLL_MS);
          batch = await runs.log(userId, id, cursor);
        }
      });
    });
}
