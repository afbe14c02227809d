import { EventEmitter } from 'node:events';
import type { QueuedRun, RunQueue, RunSignals, TakenRun } from '../core/index.ts';

/**
 * The run queue of a single process (SQLite): the same contract as the PostgreSQL queue, in memory. Queued runs
 * are also in the database (status `queued`), and a restart queues them again (RunService.recover).
 */
export function createLocalRunQueue(options: { runsPerUser: number }): RunQueue {
  const waiting: QueuedRun[] = [];
  const taken = new Map<string, number>();
  let tickets = 0;
  return {
    kind: 'local',
    async enqueue(run) {
      if (!waiting.some((entry) => entry.runId === run.runId)) waiting.push(run);
    },
    async take(max) {
      const out: TakenRun[] = [];
      for (let index = 0; index < waiting.length && out.length < max; ) {
        const run = waiting[index] as QueuedRun;
        const held = taken.get(run.userId) ?? 0;
        if (held >= options.runsPerUser) {
          index += 1;
          continue;
        }
        waiting.splice(index, 1);
        taken.set(run.userId, held + 1);
        out.push({ ...run, ticket: String(++tickets) });
      }
      return out;
    },
    async settle(run) {
      const held = (taken.get(run.userId) ?? 1) - 1;
      if (held <= 0) taken.delete(run.userId);
      else taken.set(run.userId, held);
    },
    async putBack(run) {
      await this.settle(run);
      waiting.unshift({ runId: run.runId, userId: run.userId });
    },
    async remove(runId) {
      const index = waiting.findIndex((entry) => entry.runId === runId);
      if (index >= 0) waiting.splice(index, 1);
    },
    async abandon() {},
    async depth() {
      return waiting.length;
    },
    async close() {
      waiting.length = 0;
    },
  };
}

/** Run messages inside one process. */
export function createLocalRunSignals(): RunSignals {
  const emitter = new EventEmitter();
  return {
    async queued() {
      emitter.emit('queued');
    },
    async cancel(runId) {
      emitter.emit('cancel', runId);
    },
    async subscribe(handlers) {
      const onQueued = () => handlers.queued();
      const onCancel = (runId: string) => handlers.cancel(runId);
      emitter.on('queued', onQueued);
      emitter.on('cancel', onCancel);
      return async () => {
        emitter.off('queued', onQueued);
        emitter.off('cancel', onCancel);
      };
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}
