import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from './app.ts';
import type { Deps } from './context.ts';
import { startHookServer } from './hook-server.ts';
import { issuesOf } from './issues.ts';
import { mergeRequestsOf, refreshMergeRequests } from './merge-requests.ts';
import { setDefaultBranch } from './post-receive.ts';
import { protectBranch, unprotectBranch, type ProtectOptions } from './protected-branches.ts';
import { listBranchesSync, type BranchHead } from './repo-queries.ts';
import { commitFileSync, createRepositories, type FileCommit } from './repos.ts';
import {
  addApplication,
  checkedLifetime,
  findTokenRecord,
  revokeToken as revokeOAuthTokenRecord,
  type AddOAuthApplicationInput,
  type FakeOAuthApplication,
  type FakeOAuthToken,
  type OAuthRefreshRevocation,
  type OAuthStats,
} from './oauth/state.ts';
import { listen, type Listening } from './server.ts';
import {
  addProject,
  addToken,
  addUser,
  createState,
  expireToken,
  findProject,
  findToken,
  isoNow,
  revokeToken,
  type AddProjectInput,
  type AddTokenInput,
  type AddUserInput,
  type FakeIssue,
  type FakeMergeRequest,
  type FakeProject,
  type FakeProtectedBranch,
  type FakeToken,
  type FakeState,
  type FakeUser,
  type RecordedRequest,
  type TokenStats,
} from './state.ts';
import { createTestTls, removeTestTls } from './tls.ts';
import { tokenFamily } from './token-rotation.ts';

export type {
  AccessLevel,
  AddProjectInput,
  AddTokenInput,
  AddUserInput,
  DiffRefs,
  FakeAccessRule,
  FakeIssue,
  FakeMember,
  FakeMergeRequest,
  FakeProject,
  FakeProtectedBranch,
  FakeToken,
  FakeUser,
  ProtectedAccessLevel,
  RecordedRequest,
  TokenStats,
  Visibility,
} from './state.ts';
export type {
  AddOAuthApplicationInput,
  FakeOAuthApplication,
  FakeOAuthToken,
  OAuthRefreshRevocation,
  OAuthStats,
} from './oauth/state.ts';
export type { ProtectOptions } from './protected-branches.ts';
export type { BranchHead } from './repo-queries.ts';
export type { FileCommit } from './repos.ts';

export interface StartOptions {
  /** Serve HTTPS with a certificate from a freshly generated test CA (default false). */
  tls?: boolean;
  /** Subpath GitLab is installed under, e.g. `/gitlab` (default ''). */
  basePath?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Behave as behind a reverse proxy that decodes `%2F` in paths (docs/gitlab.md, "Projects, branches…"). */
  decodeEncodedSlashes?: boolean;
  /** Send a `Date` header this far from the real time (a GitLab host whose clock is off). */
  clockOffsetMs?: number;
  /** What /metadata and /version report (default `18.1.1-ee`). */
  version?: string;
  /** Lifetime of OAuth access tokens, in seconds (default 7200, GitLab's two hours). */
  oauthTokenLifetimeSeconds?: number;
  /** When a refresh retires the old token pair (default 'immediately', as doc/api/oauth2.md describes). */
  oauthRefreshRevocation?: OAuthRefreshRevocation;
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
  /** Every TCP connection the instance accepted, by the client's address and port (to tell who connected). */
  readonly connections: { remoteAddress: string; remotePort: number }[];
  /**
   * Returns and forgets the requests no route of the fake answered (each got GitLab's catch-all 404). A test that
   * sends such a request on purpose takes it here; any left over make `close()` fail, so a client calling a route
   * the fake lacks cannot pass unnoticed.
   */
  takeUnimplemented(): RecordedRequest[];
  addUser(input: AddUserInput): FakeUser;
  /** Creates a personal access token and returns its value (`glpat-…`). */
  addToken(userId: number, input: AddTokenInput): string;
  /** The stored record behind a token value. */
  tokenInfo(token: string): FakeToken;
  revokeToken(token: string): void;
  /** Moves the token's expiry to yesterday. */
  expireToken(token: string): void;
  /** Sets the token's expiry date (YYYY-MM-DD, or null for none), e.g. to make it due for rotation. */
  setTokenExpiry(token: string, expiresAt: string | null): void;
  /**
   * The rotation chain `token` belongs to (GitLab's token family: `previous_personal_access_token_id` links),
   * oldest first, as live records: after a rotation the old token is revoked and the newest one is active.
   */
  tokenFamily(token: string): FakeToken[];
  /** How many rotations GitLab carried out and how many reuse detections revoked a family. */
  tokenStats(): TokenStats;
  /** Successful `POST /personal_access_tokens/self/rotate` calls so far (`tokenStats().rotations`). */
  rotationCount(): number;
  /**
   * The next `count` rotations happen at GitLab, but their answers are lost: the client gets a 502 instead, as when
   * a proxy gives up while GitLab is still working.
   */
  injectRotationAnswerLoss(count: number): void;
  /**
   * The token's next `GET /personal_access_tokens/self` straddles its expiry: GitLab authenticates the request, the
   * token's last day ends, and the entity it renders says `active: false, revoked: false` (PersonalAccessToken#active?
   * is read at rendering). Its expiry date becomes today, the first day GitLab counts it expired.
   */
  injectExpiryDuringSelfRequest(token: string): void;
  /**
   * A project with a real bare repository: an initial commit (README.md) on the default branch and on
   * `branches`, or empty with `defaultBranch: null`. The default branch is protected unless
   * `protectDefaultBranch: false`.
   */
  addProject(input: AddProjectInput): FakeProject;
  /** Path of the project's bare repository (created on first use). */
  repoPath(projectId: number): string;
  /** The project's branches and their head commits, read from the repository, sorted by name. */
  branches(projectId: number): BranchHead[];
  /**
   * Commits one file to `branch` (created from `startBranch` or the default branch when missing),
   * without hooks, as if someone else had pushed; open merge requests follow. Resolves to the commit SHA.
   */
  commitFile(projectId: number, change: FileCommit): Promise<string>;
  /** Protects a branch or `*` wildcard (push and merge default to Maintainer, force push off). */
  protectBranch(projectId: number, name: string, options?: ProtectOptions): FakeProtectedBranch;
  unprotectBranch(projectId: number, name: string): void;
  /** The project's merge requests, oldest first (live records). */
  mergeRequests(projectId: number): FakeMergeRequest[];
  /** The project's issues, oldest first (live records). */
  issues(projectId: number): FakeIssue[];
  /**
   * The next `count` merge request creations answer `400 {"message":{"source_branch":["does not exist"]}}`
   * as GitLab does for a moment after a push, before the new branch is visible to the API.
   */
  injectSourceBranchLag(count: number): void;
  /** The next `count` API requests answer 429 with Retry-After: retryAfterSeconds. */
  injectRateLimit(options: { count: number; retryAfterSeconds: number }): void;
  /** The next `count` API requests answer 502 (or `status`, 502 or 503). */
  injectServerErrors(count: number, status?: 502 | 503): void;
  /** Requests that `matches` (as `requests` records them) wait from now until the function returned is called. */
  holdRequests(matches: (request: RecordedRequest) => boolean): () => void;
  /** git's fetches and clones (`POST …/git-upload-pack`) wait from now until the function returned is called. */
  holdFetches(): () => void;
  /**
   * Registers an OAuth application (confidential unless `confidential: false`); its scopes must be
   * GitLab's. The record carries `clientId` and `clientSecret`.
   */
  addOAuthApplication(input: AddOAuthApplicationInput): FakeOAuthApplication;
  /** The password the sign-in page accepts for this user; without one, any non-empty password works. */
  setPassword(userId: number, password: string): void;
  /**
   * While set, GET /oauth/authorize approves every valid request at once for this user with a 302 to the
   * client: no sign-in, no consent page. `null` switches it off.
   */
  oauthAutoApprove(userId: number | null): void;
  /** Lifetime of OAuth access tokens issued from now on, in seconds (at least 1). */
  setOAuthTokenLifetime(seconds: number): void;
  /** When refreshes from now on retire the old pair: at the refresh, or when the new token is first used. */
  setOAuthRefreshRevocation(mode: OAuthRefreshRevocation): void;
  /** How many codes were issued and exchanged, refreshes and revocations (through /oauth/revoke). */
  oauthStats(): OAuthStats;
  /** Every OAuth token pair issued, oldest first (live records). */
  oauthTokens(): FakeOAuthToken[];
  /** Ages the pair holding this access or refresh token past its lifetime; refreshing still works. */
  expireOAuthToken(token: string): void;
  /** Revokes the pair holding this access or refresh token, as revoking the application in GitLab would. */
  revokeOAuthToken(token: string): void;
  /**
   * Stops the fake and removes its files; then rejects if it received requests it does not implement that the
   * test did not take with `takeUnimplemented()`.
   */
  close(): Promise<void>;
}

/** Fakes started and not closed yet in this process: checked once more when the process is about to exit. */
const open = new Set<FakeState>();

process.once('exit', () => {
  for (const state of open) {
    if (state.unimplemented.length === 0) continue;
    process.stderr.write(`${unimplementedMessage(state.unimplemented)} (the fake was never closed)\n`);
    process.exitCode = 1;
  }
});

function unimplementedMessage(requests: RecordedRequest[]): string {
  const list = requests.map((request) => `${request.method} ${request.path}`).join(', ');
  return `the fake GitLab received requests it does not implement (answered with GitLab's catch-all 404): ${list}`;
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
  const state = createState({
    oauthTokenLifetimeSeconds: options.oauthTokenLifetimeSeconds,
    oauthRefreshRevocation: options.oauthRefreshRevocation,
  });
  const dir = await mkdtemp(join(tmpdir(), 'fake-gitlab-'));
  const home = join(dir, 'home');
  await mkdir(home);
  const repos = createRepositories({ root: join(dir, 'repositories'), hooksDir: join(dir, 'hooks'), home });
  const site = { baseUrl: '' };
  const webUrlOf = (project: FakeProject) => `${site.baseUrl}/${project.pathWithNamespace}`;
  const secret = randomBytes(24).toString('hex');
  let hooks: Awaited<ReturnType<typeof startHookServer>> | null = null;
  let tls: Awaited<ReturnType<typeof createTestTls>> | null = null;
  let server: Listening;
  const deps: Deps = {
    state,
    // Filled in once the port is known; routes read it per request.
    site,
    instance: {
      version: options.version ?? '18.1.1-ee',
      revision: 'f0a1b2c3d4e',
      enterprise: (options.version ?? '18.1.1-ee').endsWith('-ee'),
    },
    repos,
    git: { hookSocket: '', hookSecret: secret, children: new Set() },
  };
  try {
    hooks = await startHookServer({ dir, secret, state, repos, webUrlOf });
    deps.git.hookSocket = hooks.socketPath;
    tls = options.tls ? await createTestTls() : null;
    server = await listen(createApp(deps, basePath), {
      host,
      port: options.port ?? 0,
      tls: tls ? { key: tls.serverKeyPem, cert: tls.serverCertPem } : null,
      quirks: { decodeEncodedSlashes: options.decodeEncodedSlashes ?? false, clockOffsetMs: options.clockOffsetMs ?? 0 },
    });
  } catch (error) {
    await hooks?.close();
    if (tls) await removeTestTls(tls);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  site.baseUrl = `${tls ? 'https' : 'http'}://${hostForUrl(host)}:${server.port}${basePath}`;
  const connections: { remoteAddress: string; remotePort: number }[] = [];
  server.server.on('connection', (socket: import('node:net').Socket) => {
    connections.push({ remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 });
  });
  const hookServer = hooks;
  const testTls = tls;
  open.add(state);

  const oauthToken = (value: string): FakeOAuthToken => {
    const found = findTokenRecord(state.oauth, value);
    if (!found) throw new Error('unknown OAuth token');
    return found;
  };
  const user = (id: number): FakeUser => {
    const found = state.users.get(id);
    if (!found) throw new Error(`no user ${id}`);
    return found;
  };

  const project = (id: number): FakeProject => {
    const found = findProject(state, id);
    if (!found) throw new Error(`no project ${id}`);
    return found;
  };

  return {
    baseUrl: site.baseUrl,
    caPem: testTls?.caPem ?? null,
    caFile: testTls?.caFile ?? null,
    requests: state.requests,
    connections,
    takeUnimplemented: () => state.unimplemented.splice(0),
    addUser: (input) => addUser(state, input),
    addToken: (userId, input) => addToken(state, userId, input).token,
    tokenInfo: (token) => findToken(state, token),
    revokeToken: (token) => revokeToken(state, token),
    expireToken: (token) => expireToken(state, token),
    setTokenExpiry: (token, expiresAt) => {
      if (expiresAt !== null && !/^\d{4}-\d{2}-\d{2}$/.test(expiresAt)) throw new Error(`expiresAt must be YYYY-MM-DD, got ${expiresAt}`);
      findToken(state, token).expiresAt = expiresAt;
    },
    tokenFamily: (token) => tokenFamily(state, findToken(state, token)),
    tokenStats: () => ({ ...state.tokenStats }),
    rotationCount: () => state.tokenStats.rotations,
    injectRotationAnswerLoss: (count) => {
      state.faults.rotationAnswerLoss.remaining = count;
    },
    injectExpiryDuringSelfRequest: (token) => {
      findToken(state, token);
      state.faults.expiryDuringSelfRequest.add(token);
    },
    addProject: (input) => {
      const created = addProject(state, input);
      if (created.defaultBranch !== null && created.protectDefaultBranch) protectBranch(state, created, created.defaultBranch);
      return created;
    },
    repoPath: (id) => repos.ensure(project(id)),
    branches: (id) => listBranchesSync(repos, repos.ensure(project(id))).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    commitFile: async (id, change) => {
      const target = project(id);
      const sha = commitFileSync(repos, repos.ensure(target), change, target.defaultBranch);
      if (target.defaultBranch === null) setDefaultBranch(deps, target, change.branch);
      await refreshMergeRequests(deps, target, [change.branch]);
      return sha;
    },
    protectBranch: (id, name, protectOptions) => protectBranch(state, project(id), name, protectOptions),
    unprotectBranch: (id, name) => unprotectBranch(project(id), name),
    mergeRequests: (id) => mergeRequestsOf(state, project(id).id),
    issues: (id) => issuesOf(state, project(id).id),
    injectSourceBranchLag: (count) => {
      state.faults.sourceBranchLag.remaining = count;
    },
    injectRateLimit: ({ count, retryAfterSeconds }) => {
      state.faults.rateLimited = { remaining: count, retryAfterSeconds };
    },
    injectServerErrors: (count, status = 502) => {
      state.faults.serverErrors = { remaining: count, status };
    },
    holdRequests: (matches) => holdRequests(state, matches),
    holdFetches: () => holdRequests(state, (request) => request.method === 'POST' && request.path.endsWith('/git-upload-pack')),
    addOAuthApplication: (input) => addApplication(state.oauth, input, isoNow(state)),
    setPassword: (userId, password) => {
      state.web.passwords.set(user(userId).id, password);
    },
    oauthAutoApprove: (userId) => {
      state.oauth.settings.autoApproveUserId = userId === null ? null : user(userId).id;
    },
    setOAuthTokenLifetime: (seconds) => {
      state.oauth.settings.tokenLifetimeSeconds = checkedLifetime(seconds);
    },
    setOAuthRefreshRevocation: (mode) => {
      state.oauth.settings.refreshRevocation = mode;
    },
    oauthStats: () => ({ ...state.oauth.stats }),
    oauthTokens: () => [...state.oauth.tokens.values()],
    expireOAuthToken: (value) => {
      // As if it had been issued a second more than its lifetime ago.
      const record = oauthToken(value);
      record.createdAtMs = Math.min(record.createdAtMs, state.now().getTime() - record.expiresInSeconds * 1000 - 1000);
    },
    revokeOAuthToken: (value) => revokeOAuthTokenRecord(oauthToken(value), state.now().getTime()),
    close: async () => {
      for (const child of deps.git.children) child.kill('SIGKILL');
      await server.close();
      await hookServer.close();
      if (testTls) await removeTestTls(testTls);
      await rm(dir, { recursive: true, force: true });
      open.delete(state);
      if (state.unimplemented.length > 0) throw new Error(unimplementedMessage(state.unimplemented.splice(0)));
    },
  };
}

/** Holds the requests that match until the function returned is called (FakeGitLab.holdRequests). */
function holdRequests(state: FakeState, matches: (request: RecordedRequest) => boolean): () => void {
  let release = () => {};
  const hold = { matches, until: new Promise<void>((resolve) => (release = resolve)) };
  state.faults.held.push(hold);
  return () => {
    state.faults.held = state.faults.held.filter((other) => other !== hold);
    release();
  };
}
