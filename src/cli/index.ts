export { runCli, buildProgram } from './program.ts';
export type { LocalActions } from './local-actions.ts';
export type { LoadLocalActions } from './context.ts';
export { CliError } from './api-client.ts';
