/**
 * The forgelink command: arguments and the process's exit. Only the CLI is loaded up front; the service
 * (`compose.ts`, through `local-actions.ts`) only for the commands that run it on this machine.
 */
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';

// Node keeps the compiled modules (TypeScript already stripped) between runs, so a command starts in about the
// time Node itself takes. The cache lives in the user's own cache directory, not a /tmp other users can write.
enableCompileCache(path.join(process.env.XDG_CACHE_HOME?.trim() || path.join(process.env.HOME?.trim() || homedir(), '.cache'), 'forgelink', 'node-compile-cache'));

const { runCli } = await import('./cli/index.ts');
const code = await runCli(process.argv, async () => (await import('./local-actions.ts')).localActions(process.env));
if (code !== 0) process.exitCode = code;
