/**
 * The credential broker's cost (docs/security.md, "Credential broker"): a clone of a repository of more than 50 MB
 * and a run of small API requests, each inside a real sandbox, once through the broker (TLS terminated, surrogate
 * swapped, policy asked, a new verified connection upstream) and once through a plain CONNECT tunnel (direct
 * mode), against the fake GitLab over HTTPS.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { rootCertificates } from 'node:tls';
import { runGuard, startRunBroker, type RunPolicy } from '../src/broker/index.ts';
import { originOfBaseUrl } from '../src/core/index.ts';
import { createBubblewrapDriver, SANDBOX_DEFAULT_PATH } from '../src/sandbox/index.ts';
import { startFakeGitLab } from '../testing/fake-gitlab/index.ts';

type Row = (name: string, value: string, baselineName: string, baseline: string, extra?: string) => void;

function git(args: string[], cwd: string, env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, stdio: ['ignore', 'ignore', 'inherit'], env: { PATH: process.env.PATH, HOME: cwd, GIT_CONFIG_NOSYSTEM: '1', ...env } });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`git ${args[0]} exited with ${code}`))));
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const CREDENTIAL_HELPER = '!f() { test "$1" = get && printf "username=oauth2\\npassword=%s\\n" "$GITLAB_TOKEN"; }; f';

/** N sequential GET /api/v4/projects/:id with keep-alive, from Node inside the sandbox; prints each duration in ms. */
const API_SCRIPT = `
const url = process.env.BENCH_URL, n = Number(process.env.BENCH_N), out = [];
for (let i = 0; i < n; i += 1) {
  const t = performance.now();
  const r = await fetch(url, { headers: { 'PRIVATE-TOKEN': process.env.GITLAB_TOKEN } });
  await r.arrayBuffer();
  if (r.status !== 200) { console.error('status', r.status); process.exit(1); }
  out.push(performance.now() - t);
}
console.log(JSON.stringify(out));
`;

export async function brokerBench(row: Row): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-bench-broker-'));
  const gitlab = await startFakeGitLab({ tls: true });
  try {
    const user = gitlab.addUser({ username: 'bench' }).id;
    const project = gitlab.addProject({ path: 'bench/big', protectDefaultBranch: false, members: [{ userId: user, accessLevel: 30 }] });
    const token = gitlab.addToken(user, { scopes: ['api'], expiresAt: '2030-01-01' });
    // 56 MB of incompressible files pushed to the project's main branch from the host, over HTTPS as any client would.
    const source = path.join(dir, 'source');
    const caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, gitlab.caPem ?? '');
    const hostEnv = { GITLAB_TOKEN: token, GIT_SSL_CAINFO: caFile, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'credential.helper', GIT_CONFIG_VALUE_0: CREDENTIAL_HELPER };
    await git(['clone', '-q', `${gitlab.baseUrl}/bench/big.git`, source], dir, hostEnv);
    for (let i = 0; i < 7; i += 1) await writeFile(path.join(source, `blob-${i}.bin`), randomBytes(8 * 1024 * 1024));
    await git(['add', '.'], source);
    await git(['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', 'commit', '-qm', 'big'], source);
    await git(['push', '-q', 'origin', 'HEAD:main'], source, hostEnv);

    const origin = originOfBaseUrl(gitlab.baseUrl);
    const driver = createBubblewrapDriver({ stateDir: path.join(dir, 'state') });
    const policy: RunPolicy = {
      projectId: project.id,
      projectPath: 'bench/big',
      defaultBranch: 'main',
      protectedBranches: ['main'],
      existingBranches: new Set(['main']),
      allowTags: false,
      allowMerge: false,
      readOtherProjects: false,
    };
    const modes = ['tunnel', 'broker'] as const;
    const clone: Record<string, number[]> = { tunnel: [], broker: [] };
    const api: Record<string, number[]> = { tunnel: [], broker: [] };
    for (const mode of modes) {
      const runBroker =
        mode === 'broker'
          ? await startRunBroker({
              runId: 'bench-broker',
              timeoutMs: 600_000,
              gitlab: { origin, caPem: gitlab.caPem, oauth: false, token: async () => token },
              secrets: [],
              guard: runGuard(() => policy),
            })
          : null;
      const workspaceDir = path.join(dir, `workspace-${mode}`);
      await mkdir(workspaceDir);
      const bundle = `${rootCertificates.join('\n')}\n${gitlab.caPem ?? ''}\n${runBroker?.caPem ?? ''}`;
      const session = await driver.create({
        runId: `bench-${mode}`,
        workspaceDir,
        allowlist: [origin],
        outboundPolicy: { allow: ['127.0.0.0/8'] },
        files: { '/etc/forgelink/ca-bundle.pem': bundle },
        ...(runBroker === null ? {} : { broker: runBroker.broker }),
      });
      try {
        const env = {
          PATH: SANDBOX_DEFAULT_PATH,
          GITLAB_TOKEN: runBroker?.surrogates.GITLAB_TOKEN ?? token,
          GIT_SSL_CAINFO: '/etc/forgelink/ca-bundle.pem',
          NODE_EXTRA_CA_CERTS: '/etc/forgelink/ca-bundle.pem',
          GIT_TERMINAL_PROMPT: '0',
          GIT_CONFIG_COUNT: '1',
          GIT_CONFIG_KEY_0: 'credential.helper',
          GIT_CONFIG_VALUE_0: CREDENTIAL_HELPER,
        };
        for (let i = 0; i < 3; i += 1) {
          const started = performance.now();
          const exit = await session.exec({ command: ['git', 'clone', '-q', `${gitlab.baseUrl}/bench/big.git`, `/tmp/clone-${i}`], env, cwd: '/tmp', timeoutMs: 600_000 });
          if (exit.exitCode !== 0) throw new Error(`clone through the ${mode} failed (${exit.exitCode})`);
          clone[mode]?.push(performance.now() - started);
          await session.exec({ command: ['rm', '-rf', `/tmp/clone-${i}`], env, cwd: '/tmp', timeoutMs: 60_000 });
        }
        let stdout = '';
        const exit = await session.exec({
          command: ['node', '--input-type=module', '-e', API_SCRIPT],
          env: { ...env, BENCH_URL: `${gitlab.baseUrl}/api/v4/projects/${project.id}`, BENCH_N: '300' },
          timeoutMs: 300_000,
          onOutput: (chunk, stream) => {
            if (stream === 'stdout') stdout += chunk;
          },
        });
        if (exit.exitCode !== 0) throw new Error(`API requests through the ${mode} failed`);
        // The first requests open connections (and, through the broker, make its certificate): left out.
        api[mode] = (JSON.parse(stdout) as number[]).slice(20);
      } finally {
        await session.destroy();
      }
    }
    const brokerClone = median(clone.broker ?? []);
    const tunnelClone = median(clone.tunnel ?? []);
    row(
      'clone of a 56 MB repository, through the broker',
      `${(brokerClone / 1000).toFixed(2)} s`,
      'through a CONNECT tunnel',
      `${(tunnelClone / 1000).toFixed(2)} s`,
      `${(brokerClone / tunnelClone).toFixed(2)}× (target ≤ 1.3×; median of 3)`,
    );
    const brokerApi = median(api.broker ?? []);
    const tunnelApi = median(api.tunnel ?? []);
    row(
      'API request p50, through the broker',
      `${brokerApi.toFixed(2)} ms`,
      'through a CONNECT tunnel',
      `${tunnelApi.toFixed(2)} ms`,
      `+${(brokerApi - tunnelApi).toFixed(2)} ms (target ≤ 2 ms; 280 keep-alive requests)`,
    );
  } finally {
    await gitlab.close();
    await rm(dir, { recursive: true, force: true });
  }
}
