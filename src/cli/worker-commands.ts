import type { Command } from 'commander';
import type { ApiClient } from './api-client.ts';
import { columns } from './format.ts';

type Io = {
  api(command: Command): Promise<ApiClient>;
  print: (command: Command, value: unknown, human: () => string) => void;
};

/** One worker as `GET /workers` lists it. */
export type WorkerView = { id: string; host: string; capacity: number; running: number; state: string; startedAt: string; lastHeartbeatAt: string };

/** The workers as a table. */
export function workersTable(workers: readonly WorkerView[]): string {
  if (workers.length === 0) return 'No workers: no process executes runs (start `forgelink serve` or `forgelink worker`).';
  const rows = [
    ['ID', 'HOST', 'RUNNING', 'STATE', 'LAST HEARTBEAT'],
    ...workers.map((worker) => [worker.id, worker.host, `${worker.running}/${worker.capacity}`, worker.state, worker.lastHeartbeatAt]),
  ];
  return columns(rows);
}

/** `forgelink workers list`: the processes executing runs, their capacity, runs and last heartbeat. */
export function addWorkerCommands(program: Command, io: Io): void {
  const workers = program.command('workers').description('the processes executing runs (forgelink serve, forgelink worker)');
  workers
    .command('list')
    .description('list the workers: capacity, runs executing now, state and last heartbeat')
    .action(async (_options: unknown, command: Command) => {
      const result = await (await io.api(command)).request<{ workers: WorkerView[] }>('GET', '/workers');
      io.print(command, result, () => workersTable(result.workers));
    });
}
