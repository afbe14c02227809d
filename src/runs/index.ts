export { createRunService, runView, isTerminal } from './service.ts';
export type { RunService, RunServiceDeps, RunView } from './service.ts';
export type { RunSettings } from './settings.ts';
export type { StartRunInput } from './input.ts';
export { COMMAND_LIMITS, commandProblem, parseDuration, checkRunInput } from './input.ts';
export { createRunWorker, createWorkerReaper } from './worker.ts';
export type { RunWorker, RunWorkerDeps, WorkerEvents, WorkerReaper } from './worker.ts';
