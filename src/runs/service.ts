import { readdir } from 'node:fs/promises';
import {
  ConflictError,
  IN_FLIGHT_STATUSES,
  isFinalStatus,
  NotFoundError,
  TERMINAL_STATUSES,
  type Connection,
  type ConnectionStore,
  type Run,
  type RunLogEntry,
  type RunQueue,
  type RunSignals,
} from '../core/index.ts';
import { removeTree } from '../sandbox/index.ts';
import { checkRunInput, resolveRunPolicy, type StartRunInput } from './input.ts';
import { runDir, type PipelineDeps } from './pipeline.ts';
import type { RunWorker } from './worker.ts';

export type RunServiceDeps = PipelineDeps & {
  connections: ConnectionStore;
  newId: () => string;
  queue: RunQueue;
  signals: RunSignals;
  /** This process's worker; null when it executes no runs (`serve --no-runs`, or not started). */
  worker: () => RunWorker | null;
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
 * Starts, lists, cancels and recovers runs on behalf of users. A started run goes to the queue (docs/architecture.md,
 * "The queue"); whichever worker process takes it executes it. Cancel reaches that worker from any process.
 */
export function createRunService(deps: RunServiceDeps) {
  const { runs, clock, settings, queue } = deps;

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
      // The connection's defaults and the operator's ceiling: a run asking for more is refused here, naming the field.
      const { credentials, options } = resolveRunPolicy(checked, connection, settings);
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
        credentials,
        policy: { refused: [], options },
        createdAt: clock.now().toISOString(),
        startedAt: null,
        finishedAt: null,
        worker: null,
      };
      await runs.createRun(run);
      try {
        await queue.enqueue({ runId: run.id, userId });
      } catch (error) {
        // Not left `queued` with no job behind it: it would wait forever.
        await runs.updateQueuedRun(run.id, {
          status: 'failed',
          error: { code: 'queue_unavailable', message: 'The run could not be queued; the server log has details.' },
          finishedAt: clock.now().toISOString(),
        });
        throw error;
      }
      await deps.signals.queued();
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

    /**
     * A queued run ends `canceled` at once; a running one is stopped by the worker executing it, whichever process
     * that is (the request is stored on the run and signalled), and ends `canceled` there.
     */
    async cancel(userId: string, id: string): Promise<RunView> {
      const run = await load(userId, id);
      if (isTerminal(run)) throw new ConflictError('run_finished', `Run ${id} has already ended (${run.status}).`);
      if (run.status === 'queued') {
        const now = clock.now().toISOString();
        const canceled = await runs.updateQueuedRun(id, {
          status: 'canceled',
          error: { code: 'canceled', message: 'The run was canceled before it started.' },
          finishedAt: now,
        });
        if (canceled !== null) {
          await queue.remove(id);
          await runs.appendLog(id, [{ at: now, stream: 'system', text: 'Run canceled before it started.\n' }]);
          return runView(canceled);
        }
        // A worker took it meanwhile: stop it there.
      }
      if (deps.worker()?.abort(id) === true) return runView(run);
      await runs.requestCancel(id, clock.now().toISOString());
      await deps.signals.cancel(id);
      return runView((await runs.getRunById(id)) ?? run);
    },

    /**
     * Single-process mode (SQLite) after a restart: runs that were in flight are marked failed (`interrupted`) and
     * their files removed; runs still queued are queued again. With PostgreSQL, other processes may be executing
     * runs, so nothing is marked here: a worker ends its own earlier runs when it starts (RunWorker.start), and
     * lost workers' runs are ended by the reaper (runs/worker.ts).
     */
    async recover(): Promise<{ interrupted: number; requeued: number }> {
      if (queue.kind !== 'local') return { interrupted: 0, requeued: 0 };
      const inFlight = await runs.listRunsByStatus(IN_FLIGHT_STATUSES);
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
      const running = new Set(deps.worker()?.running() ?? []);
      for (const entry of await readdir(settings.workDir).catch(() => [] as string[])) {
        if (!running.has(entry)) await removeTree(runDir(settings, entry));
      }
      const queued = await runs.listRunsByStatus(['queued']);
      for (const run of queued.sort((a, b) => a.createdAt.localeCompare(b.createdAt))) await queue.enqueue({ runId: run.id, userId: run.userId });
      if (queued.length > 0) await deps.signals.queued();
      return { interrupted: inFlight.length, requeued: queued.length };
    },

    /** Resolves when this process's worker has nothing running and nothing more to take (tests). */
    async idle(): Promise<void> {
      await deps.worker()?.idle();
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
