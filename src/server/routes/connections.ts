import { Hono } from 'hono';
import { z } from 'zod';
import type { ConnectionEvents, ConnectionService } from '../../connections/index.ts';
import type { DoctorService } from '../../doctor/index.ts';
import type { AuthVariables } from '../auth.ts';
import { parseBody, parseQuery } from '../validate.ts';

export const ConnectBody = z.object({
  baseUrl: z.string().optional().describe('GitLab instance URL; default https://gitlab.com'),
  token: z.string().describe('personal, project or group access token; never shown again'),
  caPem: z.string().optional().describe('PEM bundle of the instance\'s private certificate authority'),
  label: z.string().optional(),
});

const ProjectsQuery = z.object({ search: z.string().max(255).optional() });
const EventsQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).optional() });

/** `/api/v1/connections`: every handler sees only the signed-in user's connections. */
export function connectionRoutes(connections: ConnectionService, doctor?: DoctorService, events?: ConnectionEvents) {
  return new Hono<{ Variables: AuthVariables }>()
    .get('/', async (c) => c.json({ connections: await connections.list(c.var.user.id) }))
    .post('/', async (c) => {
      const body = await parseBody(c, ConnectBody);
      return c.json(await connections.connect(c.var.user.id, body), 201);
    })
    .get('/:id', async (c) => c.json(await connections.get(c.var.user.id, c.req.param('id'))))
    .delete('/:id', async (c) => {
      const { revocation } = await connections.disconnect(c.var.user.id, c.req.param('id'));
      // The connection is gone either way; an OAuth authorization GitLab did not confirm revoking is worth saying.
      if (revocation.status === 'failed') {
        return c.json({ disconnected: true, warnings: [{ code: 'revocation_failed', message: revocation.message }] }, 200);
      }
      return c.body(null, 204);
    })
    .post('/:id/check', async (c) => c.json(await connections.check(c.var.user.id, c.req.param('id'))))
    .post('/:id/doctor', async (c) => {
      if (doctor === undefined) return c.json({ error: { code: 'not_available', message: 'Doctor is not enabled on this server.' } }, 501);
      return c.json(await doctor.run(c.var.user.id, c.req.param('id')));
    })
    .get('/:id/events', async (c) => {
      if (events === undefined) return c.json({ error: { code: 'not_available', message: 'Status history is not enabled on this server.' } }, 501);
      const { limit } = parseQuery(c, EventsQuery);
      return c.json({ events: await events.list(c.var.user.id, c.req.param('id'), limit) });
    })
    .get('/:id/projects', async (c) => {
      const { search } = parseQuery(c, ProjectsQuery);
      const projects = await connections.projects(c.var.user.id, c.req.param('id'), search);
      return c.json({ projects });
    });
}
