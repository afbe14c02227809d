export { createRunService, runView, isTerminal } from './service.ts';
export type { RunService, RunServiceDeps, RunView } from './service.ts';
export type { RunSettings } from './settings.ts';
export type { StartRunInput } from './input.ts';
export { parseDuration, isValidBranchName, checkRunInput } from './input.ts';
