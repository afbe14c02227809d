import { Readable } from 'node:stream';
import { runCli } from '../../src/cli/index.ts';
import { MAIN, type Result } from './processes.ts';

/**
 * Runs `forgelink <args>` inside the test's own process: the same `runCli` that `src/main.ts` calls, with `env` as
 * its environment (also the local actions'), `stdin` as its standard input (a pipe, never a terminal) and its
 * stdout, stderr and exit code captured. What it spares is starting Node and loading the CLI for every command;
 * what it does not prove is the process boundary (main.ts, real file descriptors, the process's exit code): each
 * CLI test file keeps some commands as real processes (`forgelinkCli`) for that.
 */
export async function forgelinkInProcess(args: string[], options: { env: NodeJS.ProcessEnv; stdin?: string }): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const input = options.stdin === undefined || options.stdin === '' ? [] : [Buffer.from(options.stdin)];
  const env = { ...options.env };
  const code = await runCli(
    [process.execPath, MAIN, ...args],
    async () => (await import('../../src/local-actions.ts')).localActions(env),
    env,
    {
      stdin: Readable.from(input),
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
    },
  );
  return { code, stdout, stderr };
}
