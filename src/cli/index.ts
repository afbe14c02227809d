export { runCli, buildProgram } from './program.ts';
export type { LocalActions } from './program.ts';
export { CliError } from './api-client.ts';
