import { Hono } from 'hono';
import { z } from 'zod';
import type { ApiKeyService } from '../../api-keys/index.ts';
import { API_KEY_NAME_MAX } from '../../core/index.ts';
import type { AuthVariables } from '../auth.ts';
import { parseBody } from '../validate.ts';

// Length and characters are checked by the service, which the dashboard and the admin command share.
export const CreateKeyBody = z
  .object({
    name: z
      .string()
      .describe(`what the key is for; 1–${API_KEY_NAME_MAX} characters, unique among your keys that are not revoked`),
  })
  .strict();

/** `/api/v1/keys`: the caller's own API keys. */
export function keyRoutes(keys: ApiKeyService) {
  return new Hono<{ Variables: AuthVariables }>()
    .get('/', async (c) => c.json({ keys: await keys.list(c.var.user.id) }))
    .post('/', async (c) => {
      const body = await parseBody(c, CreateKeyBody);
      const user = c.var.user;
      return c.json(await keys.create(user.id, body.name, { actor: user.id, via: 'api', keyId: c.var.apiKeyId }), 201);
    })
    .delete('/:id', async (c) => {
      const user = c.var.user;
      await keys.revoke(user.id, c.req.param('id'), { actor: user.id, via: 'api', keyId: c.var.apiKeyId });
      return c.body(null, 204);
    });
}
