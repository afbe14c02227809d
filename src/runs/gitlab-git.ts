import { execFile } from 'node:child_process';
import dns from 'node:dns';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { ForgelinkError, checkOutboundAddress, hostInterfaceAddresses, runCanceled, type OutboundPolicy } from '../core/index.ts';
import { caBundle, gitConfigEnv } from './agent-env.ts';

/**
 * forgelink's own git against GitLab, on the host (docs/security.md, "The repository cache"): the fetch into a
 * project's mirror and the listing of GitLab's branches after a run. Like forgelink's API calls it runs outside any
 * sandbox, with the run's token, and nothing of the agent's is involved: the token reaches git in its environment
 * (never its arguments, a config file or the URL), git may connect only to the address the outbound-address policy
 * allowed when this remote was made (`http.curloptResolve`), follows no redirect, speaks only the base URL's
 * protocol, reads no system or user configuration and runs no hook.
 */
export type GitLabGit = {
  /** `git fetch` from the project into the bare repository at `repo` (a host path); progress goes to `onProgress`. */
  fetch(repo: string, refspecs: readonly string[], options: GitOptions): Promise<void>;
  /**
   * `git clone --bare` of the project into `repo` (a host path that does not exist yet): every branch and every tag,
   * the configuration `config` set before the transfer. Faster than a fetch into an empty repository (the pack is
   * checked as it arrives instead of by a walk of the whole history afterwards); it leaves `remote.origin` (the URL,
   * no credential) in the repository's config.
   */
  cloneBare(repo: string, config: readonly (readonly [string, string])[], options: GitOptions): Promise<void>;
  /** `git ls-remote --symref` of the project: its output. */
  lsRemote(patterns: readonly string[], options: GitOptions): Promise<string>;
};

export type GitOptions = { signal?: AbortSignal; timeoutMs: number; onProgress?: (chunk: string) => void };

/** git ran and exited non-zero (or could not run): its exit code when it had one, and the end of what it printed. */
export class GitExitError extends Error {
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(exitCode: number | null, stderr: string) {
    super(`git exited with ${exitCode ?? 'no exit code'}`);
    this.name = 'GitExitError';
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** `dns.lookup` with `all: true`; injectable so tests can make a name resolve anywhere. */
export type ResolveAll = (hostname: string) => Promise<{ address: string; family: number }[]>;

const GIT = '/usr/bin/git';

function systemResolveAll(hostname: string): Promise<{ address: string; family: number }[]> {
  return dns.promises.lookup(hostname, { all: true, verbatim: true });
}

/**
 * The address git will connect to for `baseUrl`: its name resolved once, the first address the outbound policy
 * allows (docs/security.md, invariant 4). Throws `gitlab_blocked_address` when none is allowed.
 */
export async function pinnedAddress(baseUrl: string, policy: OutboundPolicy, resolveAll: ResolveAll = systemResolveAll): Promise<string> {
  const hostname = new URL(baseUrl).hostname.replace(/^\[|\]$/g, '');
  const addresses =
    isIP(hostname) !== 0
      ? [{ address: hostname, family: isIP(hostname) }]
      : await resolveAll(hostname).catch((error: Error) => {
          throw new ForgelinkError('gitlab_unreachable', `GitLab at ${hostname} cannot be reached: its name did not resolve (${error.message}).`, { cause: error });
        });
  const own = hostInterfaceAddresses();
  let refusal: string | null = null;
  for (const { address } of addresses) {
    const verdict = checkOutboundAddress(hostname, address, policy, own);
    if (verdict.allowed) return address;
    refusal ??= verdict.reason;
  }
  throw new ForgelinkError('gitlab_blocked_address', refusal ?? `${hostname} did not resolve to any address.`);
}

/**
 * The git configuration (as `GIT_CONFIG_*` variables) for talking to `cloneUrl` at `address` with `token`: basic
 * authentication as GitLab takes it for personal and OAuth tokens alike (user `oauth2`), sent from the first request.
 * With a CA bundle (`ca`), git trusts that file alone: its CA directory is `ca.emptyDir`, so the system's certificate
 * directory is neither trusted besides nor parsed again at every connection (GnuTLS reads all of it each time).
 */
export function gitlabGitEnv(input: { cloneUrl: string; address: string; token: string; ca: { file: string; emptyDir: string } | null }): Record<string, string> {
  const url = new URL(input.cloneUrl);
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const scheme = url.protocol.replace(/:$/, '');
  const entries: [string, string][] = [
    ['http.extraHeader', `Authorization: Basic ${Buffer.from(`oauth2:${input.token}`).toString('base64')}`],
    ['http.curloptResolve', `${host}:${port}:${isIP(input.address) === 6 ? `[${input.address}]` : input.address}`],
    ['http.followRedirects', 'false'],
    ['protocol.allow', 'never'],
    [`protocol.${scheme}.allow`, 'always'],
    ['core.hooksPath', '/dev/null'],
    ['credential.helper', ''],
  ];
  if (input.ca !== null) entries.push(['http.sslCAInfo', input.ca.file], ['http.sslCAPath', input.ca.emptyDir]);
  return {
    PATH: '/usr/bin:/bin',
    HOME: '/nonexistent',
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    ...gitConfigEnv(entries),
  };
}

/**
 * The run's GitLab git. `dir` is the run's own directory on the host: the CA bundle is written there when the
 * connection has a private CA. The token is asked for at each command (an OAuth token may be refreshed meanwhile).
 */
export async function gitlabGit(input: {
  cloneUrl: string;
  baseUrl: string;
  caPem: string | null;
  policy: OutboundPolicy;
  token: () => Promise<string>;
  dir: string;
  resolveAll?: ResolveAll;
}): Promise<GitLabGit> {
  const address = await pinnedAddress(input.baseUrl, input.policy, input.resolveAll);
  let ca: { file: string; emptyDir: string } | null = null;
  if (input.caPem !== null) {
    ca = { file: path.join(input.dir, 'gitlab-ca.pem'), emptyDir: path.join(input.dir, 'gitlab-ca.d') };
    await writeFile(ca.file, caBundle([input.caPem]), { mode: 0o600 });
    await mkdir(ca.emptyDir, { recursive: true, mode: 0o700 });
  }
  const run = async (args: readonly string[], options: GitOptions, cwd = '/'): Promise<string> => {
    const env = gitlabGitEnv({ cloneUrl: input.cloneUrl, address, token: await input.token(), ca });
    return new Promise((resolve, reject) => {
      const child = execFile(
        GIT,
        [...args],
        { env, cwd, timeout: options.timeoutMs, maxBuffer: 64 * 1024 * 1024, ...(options.signal ? { signal: options.signal } : {}) },
        (error, stdout) => {
          if (error === null) resolve(String(stdout));
          else if (options.signal?.aborted) reject(runCanceled());
          else if (error.killed === true || error.signal === 'SIGTERM') reject(new ForgelinkError('timed_out', `git ${args.find((arg) => !arg.startsWith('-'))} did not finish in time.`));
          else reject(new GitExitError(typeof error.code === 'number' ? error.code : null, stderr));
        },
      );
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-4096);
        options.onProgress?.(chunk);
      });
    });
  };
  return {
    async fetch(repo, refspecs, options) {
      await run(['-C', repo, 'fetch', '--prune', '--no-tags', '--no-write-fetch-head', '--progress', '--', input.cloneUrl, ...refspecs], options);
    },
    async cloneBare(repo, config, options) {
      // `-c` for this git (core.sharedRepository must hold while the repository is made: its first directories and
      // files too), `--config` to keep each setting in the new repository.
      const forThisGit = config.flatMap(([key, value]) => ['-c', `${key}=${value}`]);
      const settings = config.flatMap(([key, value]) => ['--config', `${key}=${value}`]);
      // Branches as they are, and every tag (not only those the branches reach), as the fetch into a mirror takes them.
      const refs = ['--no-tags', '--config', 'remote.origin.fetch=+refs/tags/*:refs/tags/*'];
      // Named from its parent directory: git's "Cloning into bare repository '…'" goes to the run's log, which shows
      // no path of the host's data directory.
      await run([...forThisGit, 'clone', '--bare', '--progress', '--template=', ...settings, ...refs, '--', input.cloneUrl, path.basename(repo)], options, path.dirname(repo));
    },
    lsRemote: (patterns, options) => run(['ls-remote', '--symref', '--', input.cloneUrl, ...patterns], options),
  };
}
