import { Hono } from 'hono';
import type { WorkerStore } from '../../core/index.ts';
import type { AuthVariables } from '../auth.ts';

/** `/api/v1/workers`: the processes executing runs, their capacity, runs and last heartbeat (docs/contract.md). */
export function workerRoutes(workers: WorkerStore) {
  return new Hono<{ Variables: AuthVariables }>().get('/', async (c) => {
    const list = await workers.list();
    return c.json({
      workers: list.map((worker) => ({
        id: worker.id,
        host: worker.host,
        capacity: worker.capacity,
        running: worker.running,
        state: worker.state,
        startedAt: worker.startedAt,
        lastHeartbeatAt: worker.lastHeartbeatAt,
      })),
    });
  });
}
