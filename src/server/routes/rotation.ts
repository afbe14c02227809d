import { Hono } from 'hono';
import { z } from 'zod';
import type { RotationService } from '../../tokens/index.ts';
import type { AuthVariables } from '../auth.ts';
import { parseBody } from '../validate.ts';

export const RotationBody = z
  .object({
    rotation: z
      .object({
        enabled: z.boolean().describe('rotate the token before it expires'),
        lifetimeDays: z.number().int().optional().describe('how long each new token lives, 2 to 365 days (default 30)'),
        thresholdDays: z.number().int().optional().describe('rotate when this many days or fewer are left (default 7)'),
      })
      .strict(),
  })
  .strict();

/** Token rotation under `/api/v1/connections`: settings (`PATCH /:id`) and rotating now (`POST /:id/rotate`). */
export function rotationRoutes(rotation: RotationService) {
  return new Hono<{ Variables: AuthVariables }>()
    .patch('/:id', async (c) => {
      const body = await parseBody(c, RotationBody);
      return c.json(await rotation.configure(c.var.user.id, c.req.param('id'), body.rotation));
    })
    .post('/:id/rotate', async (c) => c.json(await rotation.rotate(c.var.user.id, c.req.param('id'))));
}
