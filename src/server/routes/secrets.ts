import { Hono } from 'hono';
import { z } from 'zod';
import type { SecretService } from '../../secrets/index.ts';
import type { AuthVariables } from '../auth.ts';
import { parseBody } from '../validate.ts';

export const PutSecretBody = z.object({
  value: z.string().describe('the secret; at least 8 characters, at most 64 KiB, no NUL. Never returned'),
  hosts: z
    .array(z.string())
    .optional()
    .describe('origins (host[:port], port 443 by default) the secret is meant for; absent: a replaced secret keeps its hosts'),
});

/** `/api/v1/secrets`: every handler sees only the signed-in user's secrets. No response ever carries a value. */
export function secretRoutes(secrets: SecretService) {
  return new Hono<{ Variables: AuthVariables }>()
    .get('/', async (c) => c.json({ secrets: await secrets.list(c.var.user.id) }))
    .put('/:name', async (c) => {
      const body = await parseBody(c, PutSecretBody);
      const { secret, created } = await secrets.set(c.var.user.id, c.req.param('name'), body);
      return c.json(secret, created ? 201 : 200);
    })
    .delete('/:name', async (c) => {
      await secrets.delete(c.var.user.id, c.req.param('name'));
      return c.body(null, 204);
    });
}
