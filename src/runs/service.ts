import { readdir } from 'node:fs/promises';
import {
  ConflictError,
  isFinalStatus,
  NotFoundError,
  TERMINAL_STATUSES,
  type Connection,
  type ConnectionStore,
  type Run,
  type RunLogEntry,
} from '../core/index.ts';
import { removeTree } from '../sandbox/index.ts';
import { checkRunInput, type StartRunInput } from './input.ts';
import { executeRun, runDir, SHUTDOWN, type PipelineDeps } from './pipeline.ts';

export type RunServiceDeps = PipelineDeps & {
  connections: ConnectionStore;
  newId: () => string;
};

/** A run as the API shows it (docs/contract.md, "A run"). */
export type RunView = Omit<Run, 'userId' | 'timeoutMs'> & { timeoutSeconds: number };

export function runView(run: Run): RunView {
  const { userId: _userId, timeoutMs, ...rest } = run;
  return { ...rest, timeoutSeconds: Math.round(timeoutMs / 1000) };
}

export function isTerminal(run: Run): boolean {
  return TERMINAL_STATUSES.includes(run.status);
}

/**
 * Starts, queues, cancels and recovers runs. At most `settings.concurrency` runs execute at once in this
 * process; the rest wait, oldest first.
 */
export function createRunService(deps: RunServiceDeps) {
  const { runs, clock, settings } = deps;
  const waiting: string[] = [];
  const active = new Map<string, AbortController>();
  const finished = new Set<Promise<void>>();

  function pump(): void {
    while (active.size < settings.concurrency && waiting.length > 0) {
      const id = waiting.shift() as string;
      const controller = new AbortController();
      active.set(id, controller);
      const done = (async () => {
        const run = await runs.getRunById(id);
        if (run === null || run.status !== 'queued') return;
        await executeRun(deps, run, controller.signal);
      })()
        .catch((error: unknown) => deps.onError?.(error, id))
        .finally(() => {
          active.delete(id);
          finished.delete(done);
          pump();
        });
      finished.add(done);
    }
  }

  async function load(userId: string, id: string): Promise<Run> {
    const run = await runs.getRun(userId, id);
    if (run === null) throw new NotFoundError('run_not_found', `No run ${id}.`);
    return run;
  }

  return {
    /** The agent profiles runs may name, as people see them. */
    agents(): { name: string; image: string; secrets: string[]; hosts: string[] }[] {
      return settings.agents.map((profile) => ({ name: profile.name, image: profile.image, secrets: [...profile.secrets], hosts: [...profile.hosts] }));
    },

    async start(userId: string, input: StartRunInput): Promise<RunView> {
      const checked = checkRunInput(input, settings);
      // A foreign or unknown connection is refused before anything is queued (404, like every foreign object).
      const connection = await deps.connections.getConnection(userId, checked.connectionId);
      if (connection === null) {
        throw new NotFoundError('connection_not_found', `No connection ${checked.connectionId}.`, { field: 'connectionId' });
      }
      assertConnectionUsable(connection);
      // An image that is neither in the store nor at its path is refused now, naming it.
      await deps.images?.check(checked.image);
      // A missing secret is refused now, naming it and how to set it, rather than failing the run later.
      // The profile's own secrets first: the error then names the profile's field (`agent`).
      await deps.secrets.assertExist(userId, checked.agentSecrets, 'agent');
      await deps.secrets.assertExist(userId, checked.secrets);
      const run: Run = {
        id: deps.newId(),
        userId,
        connectionId: checked.connectionId,
        project: checked.project,
        projectId: null,
        projectPath: null,
        projectWebUrl: null,
        branch: checked.branch,
        baseBranch: null,
        agent: checked.agent,
        image: { ref: checked.image, digest: null },
        command: checked.command,
        allowHosts: checked.allowHosts,
        secrets: checked.secrets,
        timeoutMs: checked.timeoutMs,
        status: 'queued',
        error: null,
        exitCode: null,
        warnings: [],
        outputs: { branches: [], mergeRequests: [], issues: [] },
        egress: { allowed: [], refused: [] },
        depth: checked.depth,
        filter: checked.filter,
        repoCache: null,
        timings: { readyMs: null, cloneMs: null },
        credentials: checked.credentials,
        policy: { refused: [] },
        createdAt: clock.now().toISOString(),
        startedAt: null,
        finishedAt: null,
      };
      await runs.createRun(run);
      waiting.push(run.id);
      pump();
      return runView(run);
    },

    async get(userId: string, id: string): Promise<RunView> {
      return runView(await load(userId, id));
    },

    async list(userId: string, limit?: number): Promise<RunView[]> {
      return (await runs.listRuns(userId, limit === undefined ? {} : { limit })).map(runView);
    },

    /** The run (checked to be the user's) and its log entries after `afterSeq`. */
    async log(userId: string, id: string, afterSeq = 0): Promise<{ run: RunView; entries: RunLogEntry[] }> {
      const run = await load(userId, id);
      return { run: runView(run), entries: await runs.readLog(id, afterSeq) };
    },

    async cancel(userId: string, id: string): Promise<RunView> {
      const run = await load(userId, id);
      if (isTerminal(run)) throw new ConflictError('run_finished', `Run ${id} has already ${run.status}.`);
      const queuedAt = waiting.indexOf(id);
      if (queuedAt >= 0 && run.status === 'queued') {
        waiting.splice(queuedAt, 1);
        await runs.appendLog(id, [{ at: clock.now().toISOString(), stream: 'system', text: 'Run canceled before it started.\n' }]);
        return runView(
          await runs.updateRun(id, {
            status: 'canceled',
            error: { code: 'canceled', message: 'The run was canceled before it started.' },
            finishedAt: clock.now().toISOString(),
          }),
        );
      }
      const controller = active.get(id);
      if (controller === undefined) {
        throw new ConflictError('run_elsewhere', `Run ${id} is executing in another forgelink process; cancel it there.`);
      }
      controller.abort();
      return runView(run);
    },

    /**
     * After a restart: runs that were in flight are marked failed (`interrupted`) and their sandboxes and
     * workspaces removed; runs still queued are queued again.
     */
    async recover(): Promise<{ interrupted: number; requeued: number }> {
      const inFlight = await runs.listRunsByStatus(['preparing', 'cloning', 'running', 'collecting']);
      for (const run of inFlight) {
        await runs.appendLog(run.id, [
          { at: clock.now().toISOString(), stream: 'system', text: 'forgelink restarted while this run was in progress; it was stopped.\n' },
        ]);
        await runs.updateRun(run.id, {
          status: 'failed',
          error: { code: 'interrupted', message: 'forgelink restarted while this run was in progress.' },
          finishedAt: clock.now().toISOString(),
        });
        await removeTree(runDir(settings, run.id));
      }
      // Leftovers of runs that no longer exist or already ended (a crash between steps).
      for (const entry of await readdir(settings.workDir).catch(() => [] as string[])) {
        if (!active.has(entry)) await removeTree(runDir(settings, entry));
      }
      const queued = await runs.listRunsByStatus(['queued']);
      for (const run of queued.sort((a, b) => a.createdAt.localeCompare(b.createdAt))) {
        if (!waiting.includes(run.id)) waiting.push(run.id);
      }
      pump();
      return { interrupted: inFlight.length, requeued: queued.length };
    },

    /**
     * Server shutdown: stops every active run and waits for it to end `failed` with code `interrupted` (nobody
     * canceled it). Queued runs stay queued; the next start takes them up.
     */
    async stop(): Promise<void> {
      waiting.length = 0;
      for (const controller of active.values()) controller.abort(SHUTDOWN);
      await Promise.allSettled([...finished]);
    },

    /** Resolves when nothing is queued or running (tests). */
    async idle(): Promise<void> {
      while (finished.size > 0 || waiting.length > 0) await Promise.allSettled([...finished]);
    },
  };
}

export type RunService = ReturnType<typeof createRunService>;

/**
 * A revoked or expired token never works again (GitLab can neither un-revoke nor extend one), so a run on it is
 * refused before it is queued, with the reason the monitor, a check or an earlier run recorded. Other statuses
 * (`invalid`, `unreachable`) may be passing troubles: such a run starts, and its preflight checks the token anew.
 */
function assertConnectionUsable(connection: Connection): void {
  if (!isFinalStatus(connection.status)) return;
  const why = connection.statusReason ?? `GitLab says this token is ${connection.status}.`;
  throw new ConflictError(
    `connection_${connection.status}`,
    `Connection ${connection.id} is ${connection.status}, so runs on it are refused: ${why} To run again, reconnect with a new token.`,
    { field: 'connectionId' },
  );
}
