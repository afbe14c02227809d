import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { OutboundPolicy, SandboxDriver, SandboxExec, SandboxExit, SandboxOptions, SandboxSession } from '../../src/core/index.ts';
import { createBubblewrapDriver, type BubblewrapDriverOptions } from '../../src/sandbox/index.ts';

export const LOOPBACK_ALLOWED: OutboundPolicy = { allow: ['127.0.0.0/8'] };

export type Sandbox = {
  base: string;
  stateDir: string;
  driver: SandboxDriver;
  /** `driver.create`, with the session destroyed after the test (before the leftover checks). */
  create(options: SandboxOptions): Promise<SandboxSession>;
  /** A fresh workspace directory on the host. */
  workspace(name?: string): Promise<string>;
  /** A unique word: put it in a command's env (and argv) to find its processes on the host. */
  marker: string;
};

/**
 * A driver whose state dir and workspaces live in a temp dir. After the test: no process carrying the
 * marker may survive, no run dir may be left in the state dir, and the temp dir is removed.
 */
export async function sandboxFixture(t: TestContext, options: Partial<BubblewrapDriverOptions> = {}): Promise<Sandbox> {
  const base = await realpath(await mkdtemp(path.join(tmpdir(), 'fl-sbx-')));
  const stateDir = path.join(base, 'state');
  const marker = `flmark${randomUUID().replaceAll('-', '')}`;
  // Sandboxes in tests compete with the tests' own processes as equals (test/sandbox/cpu-priority.test.ts asks for
  // the production priority): under a busy suite, nice 10 and a weight of 20 would starve them.
  const driver = createBubblewrapDriver({ stateDir, killGraceMs: 500, cpuWeight: null, nice: 0, ...options });
  let workspaces = 0;
  const sessions: SandboxSession[] = [];
  t.after(async () => {
    await Promise.all(sessions.map((session) => session.destroy()));
    const left = await waitForNoProcesses(marker);
    const runDirs = await readdir(stateDir).catch(() => []);
    await rm(base, { recursive: true, force: true });
    assert.deepEqual(left, [], `processes of the test survived: ${left.join(', ')}`);
    assert.deepEqual(runDirs, [], 'run dirs were left in the state dir');
  });
  return {
    base,
    stateDir,
    driver,
    marker,
    async create(options) {
      const session = await driver.create(options);
      sessions.push(session);
      return session;
    },
    async workspace(name) {
      workspaces += 1;
      const dir = path.join(base, name ?? `ws${workspaces}`);
      await mkdir(dir, { mode: 0o700 });
      return dir;
    },
  };
}

/** Host pids whose environment or command line holds `marker` (root reads every /proc/<pid>/environ). */
export async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    for (const file of ['environ', 'cmdline']) {
      const text = await readFile(`/proc/${entry}/${file}`, 'latin1').catch(() => '');
      if (text.includes(marker)) {
        found.push(Number(entry));
        break;
      }
    }
  }
  return found;
}

/** The kernel tears a killed pid namespace down asynchronously: wait for it (generously: the machine may be busy). */
export async function waitForNoProcesses(marker: string, timeoutMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await processesWith(marker);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export type Ran = SandboxExit & { stdout: string; stderr: string };

/** Runs a command and collects its output (also passed to `options.onOutput` as it arrives). */
export async function run(
  session: SandboxSession,
  command: readonly string[],
  options: Partial<Omit<SandboxExec, 'command'>> = {},
): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const exit = await session.exec({
    command,
    env: options.env ?? {},
    timeoutMs: options.timeoutMs ?? 20_000,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.offline === undefined ? {} : { offline: options.offline }),
    ...(options.input === undefined ? {} : { input: options.input }),
    onOutput: (chunk, stream) => {
      if (stream === 'stdout') stdout += chunk;
      else stderr += chunk;
      options.onOutput?.(chunk, stream);
    },
  });
  return { ...exit, stdout, stderr };
}

/** `sh -c script`, with the marker as $0 so the shell's own command line carries it too. */
export function sh(script: string, marker: string): string[] {
  return ['/bin/sh', '-c', script, marker];
}

export type TextServer = { port: number; origin: string; seen: string[]; close(): Promise<void> };

/** A plain HTTP server on 127.0.0.1 answering `<name> <method> <url>`. */
export async function textServer(name: string): Promise<TextServer> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end(`${name} ${req.method} ${req.url}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    origin: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export const isRoot = process.getuid?.() === 0;
