import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { ConnectionService } from '../../connections/index.ts';
import { InputError } from '../../core/index.ts';
import type { RotationService } from '../../tokens/index.ts';
import type { AuthVariables } from '../auth.ts';
import { parseBody } from '../validate.ts';

/** `PATCH /connections/:id`: token rotation, and the defaults the connection gives its runs (docs/contract.md, "Run policy"). */
export const ConnectionSettingsBody = z
  .object({
    rotation: z
      .object({
        enabled: z.boolean().describe('rotate the token before it expires'),
        lifetimeDays: z.number().int().optional().describe('how long each new token lives, 2 to 365 days (default 30)'),
        thresholdDays: z.number().int().optional().describe('rotate when this many days or fewer are left (default 7)'),
      })
      .strict()
      .optional(),
    credentials: z
      .enum(['brokered', 'direct'])
      .nullable()
      .optional()
      .describe('how runs on this connection hold credentials when a run does not say; null: the server\'s (FORGELINK_CREDENTIALS)'),
    policy: z
      .object({ allowTags: z.boolean().optional(), allowMerge: z.boolean().optional(), readOtherProjects: z.boolean().optional() })
      .strict()
      .optional()
      .describe('false turns the option off for this connection\'s runs; true lifts that again (never beyond what the operator allows); options left out stay as they are'),
  })
  .strict();

/** Token rotation under `/api/v1/connections`: settings (`PATCH /:id`, with the run defaults) and rotating now (`POST /:id/rotate`). */
export function rotationRoutes(rotation: RotationService | undefined, connections: ConnectionService) {
  return new Hono<{ Variables: AuthVariables }>()
    .patch('/:id', async (c) => {
      const body = await parseBody(c, ConnectionSettingsBody);
      const id = c.req.param('id');
      if (body.rotation === undefined && body.credentials === undefined && body.policy === undefined) {
        throw new InputError('invalid_input', 'The request body gives none of rotation, credentials or policy.');
      }
      if (body.rotation !== undefined && rotation === undefined) return notAvailable(c);
      // The run defaults are checked by the schema alone, so they are written after rotation's own checks pass.
      let view = body.rotation === undefined || rotation === undefined ? null : await rotation.configure(c.var.user.id, id, body.rotation);
      if (body.credentials !== undefined || body.policy !== undefined) {
        view = await connections.configureRuns(c.var.user.id, id, {
          ...(body.credentials === undefined ? {} : { credentials: body.credentials }),
          ...(body.policy === undefined ? {} : { policy: body.policy }),
        });
      }
      return c.json(view);
    })
    .post('/:id/rotate', async (c) => (rotation === undefined ? notAvailable(c) : c.json(await rotation.rotate(c.var.user.id, c.req.param('id')))));
}

function notAvailable(c: Context) {
  return c.json({ error: { code: 'not_available', message: 'Token rotation is not enabled on this server.' } }, 501);
}
