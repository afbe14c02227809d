import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../bin/forgelink.js', import.meta.url));

export type Result = { code: number | null; stdout: string; stderr: string };

/**
 * A test's environment for a forgelink process, plus Node's compile cache when the test runs with one (`npm test`
 * sets NODE_COMPILE_CACHE): a quiet optimisation that spares each process compiling the same modules again.
 */
export function forgelinkProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const cache = process.env['NODE_COMPILE_CACHE'];
  // Runs compete with the tests' own processes as equals (test/sandbox/cpu-priority.test.ts proves the priority).
  const priority = { FORGELINK_RUN_CPU_WEIGHT: 'off', FORGELINK_RUN_NICE: '0' };
  const withPriority = { ...priority, ...env };
  return cache === undefined || 'NODE_COMPILE_CACHE' in env ? withPriority : { ...withPriority, NODE_COMPILE_CACHE: cache };
}

/**
 * The environment of a CLI test in its own `home`: config and data dirs inside it, loopback GitLab allowed,
 * the example agents mounted into sandboxes.
 */
export function cliTestEnv(home: string, sandboxMounts: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    FORGELINK_DATA_DIR: join(home, 'data'),
    FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
    FORGELINK_SANDBOX_MOUNTS: sandboxMounts,
  };
}

/** Runs `forgelink <args>` as a real process with the pinned Node. */
export function forgelinkCli(args: string[], options: { env: NodeJS.ProcessEnv; stdin?: string }): Promise<Result> {
  return runNode([MAIN, ...args], options);
}

/** Runs the pinned Node with `args`, stdin from `options.stdin`, collecting stdout and stderr. */
export function runNode(args: string[], options: { env: NodeJS.ProcessEnv; stdin?: string }): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: forgelinkProcessEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

export type RunningServer = { url: string; child: ChildProcess; output: () => string; stop(): Promise<void> };

/** Starts `forgelink serve [args]` on a free port and waits until it listens. */
export function startServerProcess(env: NodeJS.ProcessEnv, args: string[] = []): Promise<RunningServer> {
  return startListening(env, ['serve', ...args], /forgelink is ready: (http:\/\/[^"\s]+)/);
}

/** Starts `forgelink worker` on a free port (its /healthz) and waits until it is ready. */
export function startWorkerProcess(env: NodeJS.ProcessEnv): Promise<RunningServer> {
  return startListening(env, ['worker'], /forgelink worker is ready: (http:\/\/[^"\s/]+)/);
}

async function startListening(env: NodeJS.ProcessEnv, args: string[], ready: RegExp): Promise<RunningServer> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: forgelinkProcessEnv({ ...env, FORGELINK_LISTEN: '127.0.0.1:0' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    // Generous: on a machine busy with other test files, starting Node and loading forgelink takes a while.
    const timer = setTimeout(() => {
      // Not left running: nothing else holds it once this promise fails.
      child.kill('SIGKILL');
      reject(new Error(`${args[0]} did not start:\n${output}`));
    }, 90_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with ${code}:\n${output}`));
    });
  });
  return {
    url,
    child,
    output: () => output,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
