import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch, type Response } from 'undici';
import type { FakeGitLab } from './index.ts';

/** Fetches `path` (below the base URL) from the fake, trusting its test CA when it has one. */
export function clientFor(gl: FakeGitLab): {
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  getUrl(url: string, headers?: Record<string, string>): Promise<Response>;
  /** POSTs `body` as JSON (or as it is, when a string or bytes). */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
} {
  const dispatcher = new Agent(gl.caPem ? { connect: { ca: gl.caPem } } : {});
  const getUrl = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers, dispatcher });
  return {
    get: (path, headers) => getUrl(`${gl.baseUrl}${path}`, headers),
    getUrl,
    post: (path, body, headers = {}) => {
      const raw = typeof body === 'string' || body instanceof Uint8Array;
      return fetch(`${gl.baseUrl}${path}`, {
        method: 'POST',
        headers: raw ? headers : { 'Content-Type': 'application/json', ...headers },
        body: raw ? body : JSON.stringify(body),
        dispatcher,
      });
    },
    close: () => dispatcher.close(),
  };
}

/** Parses a Link header into rel → URL. */
export function parseLinks(header: string | null): Record<string, string> {
  const links: Record<string, string> = {};
  for (const part of (header ?? '').split(',')) {
    const match = part.match(/<([^>]+)>;\s*rel="([^"]+)"/);
    if (match?.[1] && match[2]) links[match[2]] = match[1];
  }
  return links;
}

export interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs plain `git` against a fake: a clean environment, the fake's CA, and the token from a credential helper. */
export interface GitCli {
  /** A scratch directory for clones, removed by close(). */
  readonly dir: string;
  run(args: string[], options?: { cwd?: string; token?: string }): Promise<GitRun>;
  close(): Promise<void>;
}

export async function gitCli(gl: FakeGitLab): Promise<GitCli> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-gitlab-git-'));
  return {
    dir,
    run: (args, options = {}) =>
      new Promise((resolve, reject) => {
        // Nothing from the machine: GIT_SSL_CAINFO and ~/.gitconfig would change what git does.
        const env: Record<string, string> = {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          LANG: 'C',
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_CONFIG_GLOBAL: '/dev/null',
          GIT_TERMINAL_PROMPT: '0',
          GIT_AUTHOR_NAME: 'Agent',
          GIT_AUTHOR_EMAIL: 'agent@example.com',
          GIT_COMMITTER_NAME: 'Agent',
          GIT_COMMITTER_EMAIL: 'agent@example.com',
        };
        const config: string[] = [];
        if (gl.caFile) config.push('-c', `http.sslCAInfo=${gl.caFile}`);
        if (options.token !== undefined) {
          // The token reaches git through the environment, never the command line.
          env.T = options.token;
          config.push('-c', 'credential.helper=!f(){ echo username=oauth2; echo "password=$T"; }; f');
        }
        const child = spawn('git', [...config, ...args], { cwd: options.cwd ?? dir, env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      }),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The `remote:` lines of git's output, prefix and git's clear-to-end-of-line padding removed. */
export function remoteLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('remote:'))
    .map((line) => line.slice('remote:'.length).replace(/^ /, '').trimEnd());
}

/** A browser stand-in for the fake's HTML pages: keeps cookies, never follows redirects. */
export interface Browser {
  get(url: string): Promise<Response>;
  /** POSTs the fields form-encoded, as a browser submits a form. */
  submit(url: string, fields: Record<string, string>): Promise<Response>;
  cookies(): Map<string, string>;
  close(): Promise<void>;
}

export function browserFor(gl: FakeGitLab): Browser {
  const dispatcher = new Agent(gl.caPem ? { connect: { ca: gl.caPem } } : {});
  const jar = new Map<string, string>();
  const send = async (url: string, init: { method: string; body?: string; headers?: Record<string, string> }) => {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, {
      ...init,
      headers: { ...init.headers, ...(cookie ? { Cookie: cookie } : {}) },
      redirect: 'manual',
      dispatcher,
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    return response;
  };
  return {
    get: (url) => send(url, { method: 'GET' }),
    submit: (url, fields) =>
      send(url, {
        method: 'POST',
        body: new URLSearchParams(fields).toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      }),
    cookies: () => new Map(jar),
    close: () => dispatcher.close(),
  };
}

/** The action and the named fields of the form marked `data-testid="<testid>"` (or the first form). */
export function formIn(html: string, testid?: string): { action: string; fields: Record<string, string> } {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
  const form = forms.find((f) => testid === undefined || f[1]?.includes(`data-testid="${testid}"`));
  if (!form) throw new Error(`no form ${testid ?? ''} in page`);
  const attribute = (tag: string, name: string) => {
    const value = tag.match(new RegExp(`\\b${name}="([^"]*)"`))?.[1];
    return value === undefined ? undefined : decodeEntities(value);
  };
  const fields: Record<string, string> = {};
  for (const input of (form[2] ?? '').matchAll(/<input\b[^>]*>/g)) {
    const name = attribute(input[0], 'name');
    if (name !== undefined) fields[name] = attribute(input[0], 'value') ?? '';
  }
  return { action: attribute(form[1] ?? '', 'action') ?? '', fields };
}

function decodeEntities(text: string): string {
  return text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))).replace(/&amp;/g, '&');
}

/** A PKCE verifier (43 characters of base64url) and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}
