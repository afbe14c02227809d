import { createApp } from './app.ts';
import type { Deps } from './context.ts';
import { listen } from './server.ts';
import {
  addProject,
  addToken,
  addUser,
  createState,
  expireToken,
  findToken,
  revokeToken,
  type AddProjectInput,
  type AddTokenInput,
  type AddUserInput,
  type FakeProject,
  type FakeToken,
  type FakeUser,
  type RecordedRequest,
} from './state.ts';
import { createTestTls, removeTestTls } from './tls.ts';

export type {
  AccessLevel,
  AddProjectInput,
  AddTokenInput,
  AddUserInput,
  FakeMember,
  FakeProject,
  FakeToken,
  FakeUser,
  RecordedRequest,
  Visibility,
} from './state.ts';

export interface StartOptions {
  /** Serve HTTPS with a certificate from a freshly generated test CA (default false). */
  tls?: boolean;
  /** Subpath GitLab is installed under, e.g. `/gitlab` (default ''). */
  basePath?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** What /metadata and /version report (default `18.1.1-ee`). */
  version?: string;
}

/** A running fake GitLab; each one has its own state. */
export interface FakeGitLab {
  /** e.g. `https://127.0.0.1:41234/gitlab`, no trailing slash. */
  readonly baseUrl: string;
  /** PEM of the test CA that signed the server certificate, or null without TLS. */
  readonly caPem: string | null;
  /** A temp file holding caPem (for git, python, --ca-file), or null without TLS. */
  readonly caFile: string | null;
  /** Every request seen so far, oldest first. */
  readonly requests: RecordedRequest[];
  addUser(input: AddUserInput): FakeUser;
  /** Creates a personal access token and returns its value (`glpat-…`). */
  addToken(userId: number, input: AddTokenInput): string;
  /** The stored record behind a token value. */
  tokenInfo(token: string): FakeToken;
  revokeToken(token: string): void;
  /** Moves the token's expiry to yesterday. */
  expireToken(token: string): void;
  addProject(input: AddProjectInput): FakeProject;
  /** The next `count` API requests answer 429 with Retry-After: retryAfterSeconds. */
  injectRateLimit(options: { count: number; retryAfterSeconds: number }): void;
  /** The next `count` API requests answer 502 (or `status`, 502 or 503). */
  injectServerErrors(count: number, status?: 502 | 503): void;
  close(): Promise<void>;
}

function normaliseBasePath(basePath: string): string {
  const trimmed = basePath.replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Starts a fake GitLab on a free port (see StartOptions). */
export async function startFakeGitLab(options: StartOptions = {}): Promise<FakeGitLab> {
  const basePath = normaliseBasePath(options.basePath ?? '');
  const host = options.host ?? '127.0.0.1';
  const state = createState();
  const deps: Deps = {
    state,
    // Filled in once the port is known; routes read it per request.
    site: { baseUrl: '' },
    instance: {
      version: options.version ?? '18.1.1-ee',
      revision: 'f0a1b2c3d4e',
      enterprise: (options.version ?? '18.1.1-ee').endsWith('-ee'),
    },
  };
  const tls = options.tls ? await createTestTls() : null;
  let listening;
  try {
    listening = await listen(createApp(deps, basePath), {
      host,
      port: options.port ?? 0,
      tls: tls ? { key: tls.serverKeyPem, cert: tls.serverCertPem } : null,
    });
  } catch (error) {
    if (tls) await removeTestTls(tls);
    throw error;
  }
  const server = listening;
  const baseUrl = `${tls ? 'https' : 'http'}://${hostForUrl(host)}:${server.port}${basePath}`;
  deps.site.baseUrl = baseUrl;

  return {
    baseUrl,
    caPem: tls?.caPem ?? null,
    caFile: tls?.caFile ?? null,
    requests: state.requests,
    addUser: (input) => addUser(state, input),
    addToken: (userId, input) => addToken(state, userId, input).token,
    tokenInfo: (token) => findToken(state, token),
    revokeToken: (token) => revokeToken(state, token),
    expireToken: (token) => expireToken(state, token),
    addProject: (input) => addProject(state, input),
    injectRateLimit: ({ count, retryAfterSeconds }) => {
      state.faults.rateLimited = { remaining: count, retryAfterSeconds };
    },
    injectServerErrors: (count, status = 502) => {
      state.faults.serverErrors = { remaining: count, status };
    },
    close: async () => {
      await server.close();
      if (tls) await removeTestTls(tls);
    },
  };
}
