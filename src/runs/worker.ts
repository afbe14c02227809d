import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ForgelinkError,
  WORKER_LOST,
  type Run,
  type RunQueue,
  type RunSignals,
  type RunStore,
  type TakenRun,
  type WorkerRecord,
  type WorkerStore,
} from '../core/index.ts';
import { removeTree } from '../sandbox/index.ts';
import { executeRun, runDir, SHUTDOWN, type PipelineDeps } from './pipeline.ts';

/** What a worker tells whoever watches it (the server log; metrics hook in here). */
export type WorkerEvents = {
  /** A run was taken and claimed; `waitedMs` since it was queued. */
  started?(run: Run, waitedMs: number): void;
  finished?(run: Run): void;
  /** Something went wrong that the worker survives (a lost database connection, say). */
  trouble?(error: unknown, what: string): void;
  /** A lost worker's runs were ended by this process. */
  reaped?(worker: WorkerRecord, runIds: string[]): void;
};

export type RunWorkerDeps = PipelineDeps & {
  queue: RunQueue;
  signals: RunSignals;
  workers: WorkerStore;
  /** This worker's id: stable across restarts of the process on one data directory. */
  id: string;
  host: string;
  /** Runs at once (FORGELINK_WORKER_CONCURRENCY). */
  capacity: number;
  heartbeatMs: number;
  /** How often it looks at the queue without being woken (a missed NOTIFY, a run a user's limit held back). */
  pollMs: number;
  /** Where sandboxes keep their state, swept at start with the run workspaces. */
  sandboxDir: string;
  events?: WorkerEvents;
};

/** A run this worker executes. */
type Active = { controller: AbortController; taken: TakenRun; done: Promise<void> };

/**
 * The part of a process that executes runs (docs/architecture.md, "Processes"): takes runs from the queue up to its
 * capacity, claims each in the runs table (so a run is executed once, whatever the queue does), heartbeats into the
 * workers table, stops a run when its cancel is requested from any process, and drains on `drain`.
 */
export function createRunWorker(deps: RunWorkerDeps) {
  const { runs, queue, workers, clock, id } = deps;
  const active = new Map<string, Active>();
  const owned = ownedRuns(runs, id);
  let state: WorkerRecord['state'] = 'running';
  let stopped = true;
  let pumping: Promise<void> | null = null;
  let again = false;
  let unsubscribe: (() => Promise<void>) | null = null;
  const timers: NodeJS.Timeout[] = [];
  const startedAt = clock.now().toISOString();

  const trouble = (error: unknown, what: string) => deps.events?.trouble?.(error, what);

  function record(): WorkerRecord {
    const now = clock.now().toISOString();
    return { id, host: deps.host, pid: process.pid, capacity: deps.capacity, running: active.size, state, startedAt, lastHeartbeatAt: now };
  }

  /** Takes runs while there is room; one pass at a time, another right after when woken meanwhile. */
  function pump(): void {
    if (stopped || state !== 'running') return;
    if (pumping !== null) {
      again = true;
      return;
    }
    pumping = (async () => {
      do {
        again = false;
        const free = deps.capacity - active.size;
        if (free <= 0) return;
        const taken = await queue.take(free);
        for (const entry of taken) await begin(entry);
        // More may be waiting: the queue hands out fewer than asked when some of the oldest runs' users were at their limit.
        if (taken.length > 0) again = true;
      } while (again && !stopped && state === 'running');
    })()
      .catch((error: unknown) => trouble(error, 'taking runs from the queue'))
      .finally(() => {
        pumping = null;
      });
  }

  async function begin(taken: TakenRun): Promise<void> {
    if (stopped || state !== 'running') {
      // Taken just as the worker began to drain: back to the queue for another worker.
      await queue.putBack(taken);
      return;
    }
    const run = await runs.claimRun(taken.runId, id, clock.now().toISOString());
    if (run === null) {
      // Canceled before it started, or (a job put back twice) already someone's.
      await queue.settle(taken);
      return;
    }
    const controller = new AbortController();
    deps.events?.started?.(run, clock.now().getTime() - Date.parse(run.createdAt));
    const done = executeRun({ ...deps, runs: owned }, run, controller.signal)
      .then(
        (finished) => deps.events?.finished?.(finished),
        (error: unknown) => deps.onError?.(error, run.id),
      )
      .finally(async () => {
        await queue.settle(taken).catch((error: unknown) => trouble(error, 'settling a finished run in the queue'));
        active.delete(run.id);
        pump();
      });
    active.set(run.id, { controller, taken, done });
    // Cancel asked between the claim and now (its signal went to a worker that did not have the run yet).
    if ((await runs.listCancelRequests(id)).includes(run.id)) controller.abort();
  }

  function cancel(runId: string): void {
    active.get(runId)?.controller.abort();
  }

  async function heartbeat(): Promise<void> {
    const alive = await workers.heartbeat(id, { running: active.size, state, at: clock.now().toISOString() });
    if (!alive) {
      // Declared lost (no heartbeat for too long: a stalled machine, a cut network): another process has already
      // ended these runs `worker_lost`. Stop them; their final writes are refused (ownedRuns), then register anew.
      trouble(new Error('this worker was declared lost by another process; its runs were ended there'), 'heartbeat');
      for (const entry of active.values()) entry.controller.abort(SHUTDOWN);
      await workers.register(record());
    }
    for (const runId of await runs.listCancelRequests(id)) cancel(runId);
  }

  /** Leftovers of this worker's earlier life on this data directory (it holds the directory's lock, docs/architecture.md). */
  async function sweep(): Promise<number> {
    // Runs still marked as this worker's from before a crash: nothing executes them any more.
    const orphans = await runs.listWorkerRuns(id);
    await endLostRuns(runs, orphans, clock.now().toISOString(), 'the worker executing this run restarted (it had stopped without finishing it)');
    await queue.abandon(orphans.map((run) => run.id));
    for (const dir of [deps.settings.workDir, deps.sandboxDir]) {
      for (const entry of await readdir(dir).catch(() => [] as string[])) await removeTree(path.join(dir, entry));
    }
    return orphans.length;
  }

  return {
    id,
    /** Registers, sweeps what an earlier life of this worker left, subscribes to run messages, starts taking runs. */
    async start(): Promise<{ swept: number }> {
      stopped = false;
      await workers.register(record());
      const swept = await sweep();
      unsubscribe = await deps.signals.subscribe({ queued: pump, cancel });
      timers.push(setInterval(() => void heartbeat().catch((error: unknown) => trouble(error, 'heartbeat')), deps.heartbeatMs));
      timers.push(setInterval(pump, deps.pollMs));
      for (const timer of timers) timer.unref();
      pump();
      return { swept };
    },

    /** Runs this worker executes now. */
    running(): string[] {
      return [...active.keys()];
    },

    /** Stops the run if this worker executes it; false otherwise. */
    abort(runId: string): boolean {
      const entry = active.get(runId);
      if (entry === undefined) return false;
      entry.controller.abort();
      return true;
    },

    /**
     * SIGTERM: takes no new runs (queued ones stay for other workers), lets running ones finish for up to `graceMs`,
     * then stops them (`failed`/`worker_stopped`), and leaves the workers table.
     */
    async drain(graceMs: number): Promise<void> {
      if (stopped) return;
      state = 'draining';
      await workers.heartbeat(id, { running: active.size, state, at: clock.now().toISOString() }).catch(() => false);
      await pumping;
      const finished = Promise.allSettled([...active.values()].map((entry) => entry.done));
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        finished.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (late) for (const entry of active.values()) entry.controller.abort(SHUTDOWN);
      await Promise.allSettled([...active.values()].map((entry) => entry.done));
      await this.stop();
    },

    /** Stops at once (tests, or after `drain`): aborts what still runs, unsubscribes, leaves the workers table. */
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      for (const timer of timers) clearInterval(timer);
      for (const entry of active.values()) entry.controller.abort(SHUTDOWN);
      await pumping;
      await Promise.allSettled([...active.values()].map((entry) => entry.done));
      await unsubscribe?.();
      await workers.remove(id).catch((error: unknown) => trouble(error, 'leaving the workers table'));
    },

    /** Resolves when nothing runs and the queue gave nothing more on a last look (tests). */
    async idle(): Promise<void> {
      for (;;) {
        await pumping;
        if (active.size === 0) {
          pump();
          await pumping;
          if (active.size === 0) return;
        }
        await Promise.allSettled([...active.values()].map((entry) => entry.done));
      }
    },
  };
}

export type RunWorker = ReturnType<typeof createRunWorker>;

/**
 * The runs table as a worker's pipeline sees it: its writes to a run succeed only while the run is still this
 * worker's and unfinished, so a worker declared lost cannot overwrite the `worker_lost` another process wrote.
 */
function ownedRuns(store: RunStore, worker: string): RunStore {
  return {
    ...store,
    async updateRun(id, patch) {
      const run = await store.updateOwnedRun(id, worker, patch);
      if (run === null) throw new ForgelinkError('run_taken_away', `Run ${id} was ended by another process while this worker executed it.`);
      return run;
    },
  };
}

/** Ends runs whose worker is gone: `failed`/`worker_lost`, a line in their log saying why. */
async function endLostRuns(store: RunStore, lost: readonly Run[], at: string, why: string): Promise<string[]> {
  const ended: string[] = [];
  for (const run of lost) {
    if (run.worker === null) continue;
    const updated = await store.updateOwnedRun(run.id, run.worker, {
      status: 'failed',
      error: { code: WORKER_LOST, message: `The worker executing this run (${run.worker}) was lost: ${why}.` },
      finishedAt: at,
    });
    if (updated === null) continue;
    await store.appendLog(run.id, [{ at, stream: 'system', text: `The worker executing this run (${run.worker}) was lost: ${why}. The run was ended.\n` }]);
    ended.push(run.id);
  }
  return ended;
}

/**
 * Finds lost workers (no heartbeat for `lostAfterMs`) and ends their runs `failed`/`worker_lost`. Every process
 * on the database runs one, API replicas included, so a lost worker is found while any process survives; each
 * lost worker is claimed by exactly one of them (WorkerStore.claimLost). A live worker's runs are never touched:
 * only workers whose heartbeat stopped are claimed.
 */
export function createWorkerReaper(deps: {
  runs: RunStore;
  workers: WorkerStore;
  queue: RunQueue;
  clock: PipelineDeps['clock'];
  lostAfterMs: number;
  intervalMs: number;
  events?: WorkerEvents;
}) {
  let timer: NodeJS.Timeout | null = null;
  let sweeping: Promise<void> | null = null;

  async function sweepOnce(): Promise<void> {
    const now = deps.clock.now();
    const lost = await deps.workers.claimLost(new Date(now.getTime() - deps.lostAfterMs).toISOString());
    for (const worker of lost) {
      const seconds = Math.round(deps.lostAfterMs / 1000);
      const ended = await endLostRuns(
        deps.runs,
        await deps.runs.listWorkerRuns(worker.id),
        now.toISOString(),
        `no heartbeat from ${worker.host} (pid ${worker.pid}) for ${seconds} seconds (FORGELINK_WORKER_LOST_AFTER)`,
      );
      await deps.queue.abandon(ended);
      deps.events?.reaped?.(worker, ended);
    }
  }

  return {
    /** One look now (tests call it; the timer calls it every `intervalMs`). */
    sweep(): Promise<void> {
      sweeping ??= sweepOnce().finally(() => {
        sweeping = null;
      });
      return sweeping;
    },
    start(): void {
      timer ??= setInterval(() => void this.sweep().catch((error: unknown) => deps.events?.trouble?.(error, 'looking for lost workers')), deps.intervalMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      if (timer !== null) clearInterval(timer);
      timer = null;
      await sweeping?.catch(() => {});
    },
  };
}

export type WorkerReaper = ReturnType<typeof createWorkerReaper>;
