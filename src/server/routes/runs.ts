import { Hono } from 'hono';
import { z } from 'zod';
import type { RunService } from '../../runs/index.ts';
import type { AuthVariables } from '../auth.ts';
import { runLogResponse } from '../log-stream.ts';
import { parseBody, parseQuery } from '../validate.ts';

export const StartRunBody = z.object({
  connectionId: z.string().min(1).describe('the connection whose token the agent gets'),
  project: z.string().min(1).describe('project path (group/sub/app) or numeric id'),
  branch: z.string().optional().describe('branch to clone; default: the project\'s default branch'),
  agent: z.string().optional().describe('agent profile (GET /agents); default custom: your own command'),
  task: z.string().optional().describe('what the profile\'s agent should do (every profile but custom)'),
  command: z.array(z.string()).min(1).optional().describe('the agent command and its arguments (the custom profile)'),
  allowHosts: z.array(z.string()).optional().describe('extra origins (host:port) the sandbox may reach, where the operator permits'),
  timeoutSeconds: z.number().int().positive().optional(),
  secrets: z
    .array(z.string())
    .optional()
    .describe('names of your secrets (PUT /secrets/{name}) the agent gets as environment variables; a missing one is refused before the run is queued'),
  depth: z.number().int().positive().optional().describe('clone only this many commits of history (git clone --depth)'),
  filter: z.enum(['blob:none']).optional().describe('partial clone: file contents are fetched as needed (git clone --filter=blob:none)'),
  credentials: z
    .enum(['brokered', 'direct'])
    .optional()
    .describe('brokered: the sandbox gets surrogates and the broker swaps in the real credentials; direct: the real token (default: the server\'s, FORGELINK_CREDENTIALS)'),
  policy: z
    .object({ allowTags: z.boolean().optional(), allowMerge: z.boolean().optional(), readOtherProjects: z.boolean().optional() })
    .strict()
    .optional()
    .describe('run policy options this run turns off (false); asking for one the operator or the connection leaves off is 400 policy_not_allowed naming policy.<option>'),
  image: z
    .string()
    .optional()
    .describe('the root filesystem: host, oci:<dir>[:<tag>], oci-archive:<file>, docker-archive:<file> or docker://<registry>/<name>:<tag>; default the profile\'s'),
});

const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).optional() });

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
    .get('/:id/log', (c) => runLogResponse(c, runs, c.var.user.id, c.req.param('id')));
}
