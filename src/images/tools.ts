import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ForgelinkError } from '../core/index.ts';

/** The host-side tools run with this environment only (plus what a caller adds, a proxy say). */
export const TOOL_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

export type ToolRun = {
  /** Each line the tool prints on stdout or stderr, as it comes. */
  onLine?: (line: string) => void;
  env?: Record<string, string>;
  cwd?: string;
};

/** What a tool printed on stderr last: its error, as users see it. */
export type ToolResult = { code: number | null; signal: string | null; output: string };

/** Runs a tool to its end; its output lines go to `onLine` and the last 4 KiB are returned. */
export async function runTool(file: string, args: readonly string[], options: ToolRun = {}): Promise<ToolResult> {
  const child = spawn(file, args, { env: { PATH: TOOL_PATH, ...options.env }, cwd: options.cwd ?? '/', stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let pending = '';
  const take = (chunk: string) => {
    output = (output + chunk).slice(-4096);
    pending += chunk;
    const lines = pending.split(/\r?\n|\r/);
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') options.onLine?.(line);
  };
  child.stdout.setEncoding('utf8').on('data', take);
  child.stderr.setEncoding('utf8').on('data', take);
  const [code, signal] = await Promise.race([
    once(child, 'close') as Promise<[number | null, string | null]>,
    once(child, 'error').then(([error]) => {
      throw new ForgelinkError('image_tool_missing', `${file} could not be started (${(error as Error).message}).`, { cause: error });
    }),
  ]);
  if (pending.trim() !== '') options.onLine?.(pending);
  return { code, signal, output: output.trim() };
}

/** The last line a failed tool printed (its error), without skopeo's and umoci's log prefixes. */
export function lastError(result: ToolResult): string {
  const lines = result.output.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const last = lines.at(-1) ?? `exit code ${result.code ?? result.signal}`;
  return last.replace(/^time="[^"]*" level=\w+ msg=/, '').replace(/^"|"$/g, '').replaceAll('\\"', '"');
}

/**
 * Holds an exclusive lock on `lockFile` while `use` runs: flock(1) takes the kernel's lock and keeps it as long
 * as its child shell waits on our pipe, so the lock goes away when this process does (a crash never leaves it
 * held), and another forgelink process on the same image store waits for it.
 */
export async function withFileLock<T>(lockFile: string, use: () => Promise<T>, flockPath = '/usr/bin/flock'): Promise<T> {
  const child = spawn(flockPath, ['--exclusive', lockFile, '/bin/sh', '-c', 'echo locked; read _'], {
    env: { PATH: TOOL_PATH },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const closed = once(child, 'close');
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('error', (error) => reject(new ForgelinkError('image_tool_missing', `${flockPath} could not be started (${error.message}).`, { cause: error })));
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        if (chunk.includes('locked')) resolve();
      });
      child.once('close', () => reject(new ForgelinkError('image_lock_failed', `Could not lock ${lockFile}: ${stderr.trim() || 'flock ended'}.`)));
    });
    return await use();
  } finally {
    child.stdin.end();
    await closed;
  }
}
