import { Hono } from 'hono';
import { z } from 'zod';
import type { AuditStore } from '../../core/index.ts';
import type { AuthVariables } from '../auth.ts';
import { parseQuery } from '../validate.ts';

const AuditQuery = z.object({
  connectionId: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

/** `/api/v1/audit`: a user sees the entries about their own connections and runs; an admin sees everyone's. */
export function auditRoutes(audit: AuditStore) {
  return new Hono<{ Variables: AuthVariables }>().get('/', async (c) => {
    const { connectionId, limit } = parseQuery(c, AuditQuery);
    const user = c.var.user;
    const entries = await audit.list({
      ownerId: user.isAdmin ? null : user.id,
      ...(connectionId === undefined ? {} : { connectionId }),
      ...(limit === undefined ? {} : { limit }),
    });
    return c.json({ entries });
  });
}
