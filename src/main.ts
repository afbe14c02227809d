/**
 * The forgelink command: arguments and the process's exit. Only the CLI is loaded up front; the service
 * (`compose.ts`, through `local-actions.ts`) only for the commands that run it on this machine.
 */
import { runCli } from './cli/index.ts';

const code = await runCli(process.argv, async () => (await import('./local-actions.ts')).localActions(process.env));
if (code !== 0) process.exitCode = code;
