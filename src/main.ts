/**
 * The forgelink command: arguments and the process's exit. Only the CLI is loaded up front; the service
 * (`compose.ts`, through `local-actions.ts`) only for the commands that run it on this machine.
 * `bin/forgelink.js` is the entry point that loads this file (it turns on Node's compile cache first).
 */
const { runCli } = await import('./cli/index.ts');
const code = await runCli(process.argv, async () => (await import('./local-actions.ts')).localActions(process.env));
if (code !== 0) process.exitCode = code;
