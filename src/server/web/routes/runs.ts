import { Hono, type Context } from 'hono';
import { ConflictError, ForgelinkError, InputError, NotFoundError, TERMINAL_STATUSES, type ConnectionView } from '../../../core/index.ts';
import { toHttpError } from '../../errors.ts';
import { runLogResponse } from '../../log-stream.ts';
import { authOf } from '../auth-guard.ts';
import { splitCommandLine } from '../command-line.ts';
import type { WebDeps, WebEnv } from '../context.ts';
import { errorField, fieldText } from '../form.ts';
import type { AssetUrls, NoticeKind } from '../layout.ts';
import { runPage } from '../pages/run.ts';
import { runsPage, type ProjectChoices, type StartRunField, type StartRunValues } from '../pages/runs.ts';

const FORM_FIELDS: readonly StartRunField[] = ['connectionId', 'project', 'branch', 'agent', 'task', 'command'];
const LIST_LIMIT = 50;

/** The connection to preselect: the one asked for if it is the user's, else the first active one. */
function chooseConnection(connections: ConnectionView[], wanted: string | null): string | null {
  if (wanted !== null && connections.some((connection) => connection.id === wanted)) return wanted;
  return (connections.find((connection) => connection.status === 'active') ?? connections[0])?.id ?? null;
}

const RUN_NOTICES: Record<string, { kind: NoticeKind; text: string }> = {
  canceling: { kind: 'info', text: 'Canceling: the agent is being stopped.' },
  'cancel-too-late': { kind: 'info', text: 'The run had already ended; there was nothing to cancel.' },
};

/** `/runs` and `/runs/:id`: starting, watching and canceling the signed-in user's runs. */
export function runPageRoutes(deps: WebDeps, assets: AssetUrls) {
  const { runs, connections } = deps;

  async function projectChoices(userId: string, connectionId: string | null): Promise<ProjectChoices | null> {
    if (connectionId === null) return null;
    try {
      const projects = await connections.projects(userId, connectionId);
      return { ok: true, paths: projects.map((project) => project.pathWithNamespace).sort() };
    } catch (error) {
      if (!(error instanceof ForgelinkError)) throw error;
      return { ok: false, message: `${error.message} Type the project's path instead.` };
    }
  }

  async function render(c: Context<WebEnv>, status: 200 | 400 | 404, form: StartRunValues) {
    const auth = authOf(c);
    const list = await connections.list(auth.user.id);
    const connectionId = chooseConnection(list, form.connectionId);
    return c.html(
      runsPage({
        assets,
        auth,
        runs: await runs.list(auth.user.id, LIST_LIMIT),
        connections: list,
        projects: await projectChoices(auth.user.id, connectionId),
        agents: runs.agents(),
        form: { ...form, connectionId },
      }),
      status,
    );
  }

  return new Hono<WebEnv>()
    .get('/', (c) => render(c, 200, { connectionId: c.req.query('connection') ?? null, project: '', branch: '', agent: 'custom', task: '', command: '', errors: {} }))
    .post('/', async (c) => {
      const auth = authOf(c);
      const body = await c.req.parseBody();
      const values: StartRunValues = {
        connectionId: fieldText(body.connectionId) || null,
        project: fieldText(body.project),
        branch: fieldText(body.branch),
        agent: fieldText(body.agent) || 'custom',
        task: fieldText(body.task),
        command: fieldText(body.command),
        errors: {},
      };
      // Without JavaScript, "Load projects" posts the form back to list the chosen connection's projects.
      if (body.intent === 'load-projects') return render(c, 200, { ...values, project: '' });
      try {
        const run = await runs.start(auth.user.id, {
          connectionId: values.connectionId ?? '',
          project: values.project,
          branch: values.branch,
          agent: values.agent,
          // A profile gets the task, custom the command; the other field is ignored.
          ...(values.agent === 'custom' ? { command: splitCommandLine(values.command) } : { task: values.task }),
        });
        return c.redirect(`/runs/${encodeURIComponent(run.id)}`, 303);
      } catch (error) {
        if (!(error instanceof InputError || error instanceof NotFoundError)) throw error;
        const field = errorField(FORM_FIELDS, error);
        return render(c, error instanceof NotFoundError ? 404 : 400, { ...values, errors: { [field]: error.message } });
      }
    })
    .get('/:id', async (c) => {
      const auth = authOf(c);
      const { run, entries } = await runs.log(auth.user.id, c.req.param('id'));
      const connection = (await connections.list(auth.user.id)).find((item) => item.id === run.connectionId) ?? null;
      // "Canceling" only while the run is still being stopped: reloaded later, the status badge says how it ended.
      const notice = c.req.query('notice') === 'canceling' && TERMINAL_STATUSES.includes(run.status) ? null : RUN_NOTICES[c.req.query('notice') ?? ''];
      return c.html(runPage({ assets, auth, run, connection, log: entries, message: notice ?? null }));
    })
    .get('/:id/log', async (c) => {
      try {
        return await runLogResponse(c, runs, authOf(c).user.id, c.req.param('id'));
      } catch (error) {
        const { status, body } = toHttpError(error);
        return c.json(body, status);
      }
    })
    .post('/:id/cancel', async (c) => {
      const id = c.req.param('id');
      try {
        await runs.cancel(authOf(c).user.id, id);
        return c.redirect(`/runs/${encodeURIComponent(id)}?notice=canceling`, 303);
      } catch (error) {
        if (!(error instanceof ConflictError) || error.code !== 'run_finished') throw error;
        return c.redirect(`/runs/${encodeURIComponent(id)}?notice=cancel-too-late`, 303);
      }
    });
}
