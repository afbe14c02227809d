export { createRunService, runView, isTerminal } from './service.ts';
export type { RunService, RunServiceDeps, RunView } from './service.ts';
export type { RunSettings } from './settings.ts';
export type { RunImages } from './pipeline.ts';
export type { StartRunInput } from './input.ts';
export { COMMAND_LIMITS, commandProblem, parseDuration, checkRunInput, resolveRunPolicy } from './input.ts';
export { repoCacheDir, listMirrors, pruneMirrors, type MirrorListing } from './repo-cache.ts';
export { createRunWorker, createWorkerReaper } from './worker.ts';
export type { RunWorker, RunWorkerDeps, WorkerEvents, WorkerReaper } from './worker.ts';
