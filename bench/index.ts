/**
 * `npm run bench`: forgelink's speed and memory figures, each printed beside a baseline measured in the
 * same run on the same machine. Nothing here passes or fails; it prints.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createGitLabClient } from '../src/gitlab/index.ts';
import { createBubblewrapDriver } from '../src/sandbox/index.ts';
import { createVault } from '../src/vault/index.ts';
import { startFakeGitLab } from '../testing/fake-gitlab/index.ts';
import { queueBench } from './dispatch.ts';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 0 ? ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2 : (sorted[middle] as number);
}

function row(name: string, value: string, baselineName: string, baseline: string, extra = ''): void {
  process.stdout.write(`${name.padEnd(44)} ${value.padStart(12)}   | ${baselineName.padEnd(30)} ${baseline.padStart(12)}${extra ? `   ${extra}` : ''}\n`);
}

async function timeIt(times: number, run: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i += 1) {
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  return samples;
}

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/true', [], { stdio: 'ignore', env: {} });
    child.on('error', reject);
    child.on('exit', () => resolve());
  });
}

async function sandboxStart(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-bench-'));
  try {
    const workspaceDir = path.join(dir, 'workspace');
    await mkdir(workspaceDir);
    const driver = createBubblewrapDriver({ stateDir: path.join(dir, 'state') });
    const session = await driver.create({ runId: 'bench', workspaceDir, allowlist: [], outboundPolicy: { allow: [] } });
    try {
      const exec = () => session.exec({ command: ['true'], env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
      await exec();
      await spawnTrue();
      const runs = 30;
      const sandboxed = median(await timeIt(runs, exec));
      const plain = median(await timeIt(runs, spawnTrue));
      row('`true` in a sandbox (median of 30)', `${sandboxed.toFixed(1)} ms`, '`true` spawned directly', `${plain.toFixed(1)} ms`, `overhead ${(sandboxed - plain).toFixed(1)} ms`);
    } finally {
      await session.destroy();
    }
    const creates = await timeIt(10, async () => {
      const session = await driver.create({ runId: 'bench-create', workspaceDir, allowlist: [], outboundPolicy: { allow: [] } });
      await session.destroy();
    });
    row('sandbox session create+destroy (median of 10)', `${median(creates).toFixed(1)} ms`, '-', '-');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function vaultThroughput(): void {
  const key = randomBytes(32);
  const vault = createVault({ keyring: { versions: [{ id: 'k1', key }] } });
  const binding = { ownerId: 'usr_bench', recordId: 'con_bench', purpose: 'token' };
  const token = `glpat-${randomBytes(15).toString('base64url')}`;
  const n = 20_000;
  let started = performance.now();
  for (let i = 0; i < n; i += 1) vault.open(vault.seal(token, binding), binding);
  const ours = ((performance.now() - started) * 1000) / n;
  started = performance.now();
  for (let i = 0; i < n; i += 1) {
    const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
    Buffer.concat([cipher.update(token, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  }
  const raw = ((performance.now() - started) * 1000) / n;
  row('vault seal + open, per token', `${ours.toFixed(1)} µs`, 'raw AES-256-GCM seal', `${raw.toFixed(1)} µs`);
}

async function projectListing(): Promise<void> {
  const gitlab = await startFakeGitLab();
  try {
    const user = gitlab.addUser({ username: 'bench' }).id;
    for (let i = 0; i < 2_000; i += 1) gitlab.addProject({ path: `g${i % 10}/p${i}`, members: [{ userId: user, accessLevel: 30 }] });
    const token = gitlab.addToken(user, { scopes: ['read_api'], expiresAt: '2030-01-01' });
    const client = createGitLabClient({ baseUrl: gitlab.baseUrl, token, tokenKind: 'pat', policy: { allow: ['127.0.0.0/8'] } });
    const heapBefore = process.memoryUsage().heapUsed;
    let started = performance.now();
    let count = 0;
    for await (const _project of client.projects()) count += 1;
    const ours = performance.now() - started;
    const heap = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
    await client.close();
    // Baseline: the same pages fetched with plain fetch, no checks, no parsing beyond JSON.
    started = performance.now();
    let next: string | null = `${gitlab.baseUrl}/api/v4/projects?membership=true&min_access_level=30&archived=false&per_page=100&pagination=keyset&order_by=id&sort=asc`;
    let plainCount = 0;
    while (next !== null) {
      const response: Response = await fetch(next, { headers: { 'PRIVATE-TOKEN': token } });
      plainCount += ((await response.json()) as unknown[]).length;
      next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get('link') ?? '')?.[1] ?? null;
    }
    const plain = performance.now() - started;
    row(`list ${count} projects (client)`, `${ours.toFixed(0)} ms`, `plain fetch loop (${plainCount})`, `${plain.toFixed(0)} ms`, `heap +${heap.toFixed(1)} MiB`);
  } finally {
    await gitlab.close();
  }
}

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

/** `forgelink serve` on a temp data dir, until it prints its address. */
async function startServe(env: NodeJS.ProcessEnv): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [MAIN, 'serve'], { env: { ...env, FORGELINK_LISTEN: '127.0.0.1:0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /(?:listening on|forgelink is ready:) (http:\/\/[^"\s]+)/.exec(seen);
      if (match) resolve(match[1] as string);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`forgelink serve exited with ${code}:\n${seen}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** CLI start-up: `--help`, and `connections list` against a running server, beside bare `node -e 0` (target ≤ 3×). */
async function cliStart(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-bench-cli-'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), FORGELINK_DATA_DIR: path.join(dir, 'data') };
  try {
    const added = await runNode([MAIN, 'admin', 'user', 'add', 'bench', '--json'], env);
    if (added.code !== 0) throw new Error('admin user add failed');
    const server = await startServe(env);
    try {
      const cliEnv = { ...env, FORGELINK_SERVER: server.url, FORGELINK_API_KEY: (JSON.parse(added.stdout) as { apiKey: string }).apiKey };
      const listed = await runNode([MAIN, 'connections', 'list'], cliEnv);
      if (listed.code !== 0) throw new Error('connections list failed');
      const runs = 10;
      const bare = median(await timeIt(runs, () => runNode(['-e', '0'], env)));
      const help = median(await timeIt(runs, () => runNode([MAIN, '--help'], env)));
      const list = median(await timeIt(runs, () => runNode([MAIN, 'connections', 'list'], cliEnv)));
      const ratio = (value: number) => `${(value / bare).toFixed(1)}× (target ≤ 3×)`;
      row('`forgelink --help` (median of 10)', `${help.toFixed(0)} ms`, '`node -e 0`', `${bare.toFixed(0)} ms`, ratio(help));
      row('`forgelink connections list`, server up', `${list.toFixed(0)} ms`, '`node -e 0`', `${bare.toFixed(0)} ms`, ratio(list));
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

process.stdout.write(`forgelink bench — node ${process.version}, ${new Date().toISOString()}\n\n`);
process.stdout.write(`${'measure'.padEnd(44)} ${'forgelink'.padStart(12)}   | ${'baseline'.padEnd(30)} ${''.padStart(12)}\n`);
vaultThroughput();
await projectListing();
await sandboxStart();
await cliStart();
await queueBench(row);
