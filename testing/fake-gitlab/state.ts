import { randomBytes } from 'node:crypto';
import { createOAuthState, type OAuthRefreshRevocation, type OAuthState } from './oauth/state.ts';
import { createWebState, type WebState } from './web/session.ts';

/** GitLab's access levels (doc/api/members.md "Roles"). */
export type AccessLevel = 0 | 5 | 10 | 15 | 20 | 30 | 40 | 50;
export type Visibility = 'private' | 'internal' | 'public';

export interface FakeUser {
  id: number;
  username: string;
  name: string;
  email: string;
  state: 'active' | 'blocked';
  createdAt: string;
}

export interface FakeToken {
  id: number;
  token: string;
  userId: number;
  name: string;
  description: string;
  scopes: string[];
  /** YYYY-MM-DD or null (no expiry). GitLab treats a token as expired from that day on. */
  expiresAt: string | null;
  revoked: boolean;
  createdAt: string;
  lastUsedAt: string | null;
  /**
   * The token this one replaced by rotation (GitLab's `previous_personal_access_token_id`); rotations chain
   * tokens into a family, which reuse detection revokes as a whole.
   */
  previousTokenId: number | null;
}

export interface FakeMember {
  userId: number;
  accessLevel: AccessLevel;
}

export interface FakeNamespace {
  id: number;
  name: string;
  path: string;
  fullPath: string;
  kind: 'group' | 'user';
  parentId: number | null;
}

export interface FakeProject {
  id: number;
  name: string;
  path: string;
  pathWithNamespace: string;
  namespaceId: number;
  description: string | null;
  defaultBranch: string | null;
  archived: boolean;
  visibility: Visibility;
  members: FakeMember[];
  createdAt: string;
  lastActivityAt: string;
  /** Protect the default branch (push and merge: Maintainer) once it exists, as GitLab does by default. */
  protectDefaultBranch: boolean;
  /** Branches besides the default one that the initial commit starts with. */
  initialBranches: string[];
  protectedBranches: FakeProtectedBranch[];
  /** Per-project iid sequences: merge requests and issues count separately. */
  nextIid: { mergeRequest: number; issue: number };
}

/** The levels ProtectedRefAccess allows: no one, Developer, Maintainer, admin (doc/api/protected_branches.md). */
export type ProtectedAccessLevel = 0 | 30 | 40 | 60;

export interface FakeAccessRule {
  id: number;
  accessLevel: ProtectedAccessLevel;
}

/** A protected branch rule; `name` may hold `*` wildcards (doc/user/project/repository/branches/protected.md). */
export interface FakeProtectedBranch {
  id: number;
  name: string;
  pushAccessLevels: FakeAccessRule[];
  mergeAccessLevels: FakeAccessRule[];
  allowForcePush: boolean;
  codeOwnerApprovalRequired: boolean;
}

export interface DiffRefs {
  baseSha: string;
  headSha: string;
  startSha: string;
}

export interface FakeMergeRequest {
  /** Global across projects. */
  id: number;
  /** Per project. */
  iid: number;
  projectId: number;
  title: string;
  description: string | null;
  state: 'opened' | 'closed' | 'merged' | 'locked';
  sourceBranch: string;
  targetBranch: string;
  authorId: number;
  assigneeIds: number[];
  labels: string[];
  forceRemoveSourceBranch: boolean;
  squash: boolean;
  /** Head of the source branch (GitLab's diff_head_sha), null when the branch is gone. */
  sha: string | null;
  diffRefs: DiffRefs | null;
  /** GitLab sends the number of changed files as a string. */
  changesCount: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface FakeIssue {
  id: number;
  iid: number;
  projectId: number;
  title: string;
  description: string | null;
  state: 'opened' | 'closed';
  authorId: number;
  labels: string[];
  confidential: boolean;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
}

export interface AddUserInput {
  username: string;
  name?: string;
  email?: string;
}

export interface AddTokenInput {
  scopes: string[];
  expiresAt?: string | null;
  revoked?: boolean;
  name?: string;
  description?: string;
}

export interface AddProjectInput {
  /** Full path, e.g. `group/sub/app`; the last segment is the project path. */
  path: string;
  name?: string;
  description?: string | null;
  defaultBranch?: string | null;
  archived?: boolean;
  visibility?: Visibility;
  members?: FakeMember[];
  /** Default true: the default branch is protected with push and merge at Maintainer, as on GitLab. */
  protectDefaultBranch?: boolean;
  /** More branches created at the initial commit (ignored for an empty repository). */
  branches?: string[];
}

export interface RecordedRequest {
  method: string;
  /** Path below the base path, e.g. `/api/v4/projects`. */
  path: string;
  query: Record<string, string>;
  /** True when the request carried a token that GitLab accepted (known, active). */
  authorized: boolean;
}

export interface Faults {
  rateLimited: { remaining: number; retryAfterSeconds: number };
  serverErrors: { remaining: number; status: number };
  /** Merge request creations still to refuse as if the just-pushed source branch were not visible yet. */
  sourceBranchLag: { remaining: number };
  /** Token rotations still to carry out whose answer is then lost on the way back (a 502 from a proxy instead). */
  rotationAnswerLoss: { remaining: number };
  /** Values of personal access tokens whose next `/personal_access_tokens/self` request straddles their expiry. */
  expiryDuringSelfRequest: Set<string>;
  /** Requests that match wait until the promise settles: a slow GitLab, for exactly as long as a test needs. */
  held: { matches: (request: RecordedRequest) => boolean; until: Promise<void> }[];
}

/** What happened to personal access tokens, for assertions. */
export interface TokenStats {
  /** Successful `POST /personal_access_tokens/self/rotate` calls. */
  rotations: number;
  /** Reuse detections: a revoked token presented for rotation, whose family was revoked. */
  familyRevocations: number;
}

/** All of one fake's state; each fake owns its own. */
export interface FakeState {
  users: Map<number, FakeUser>;
  tokens: Map<string, FakeToken>;
  namespaces: Map<string, FakeNamespace>;
  projects: Map<number, FakeProject>;
  /** Project ids by lower-cased full path: GitLab finds paths case-insensitively. */
  projectsByPath: Map<string, number>;
  mergeRequests: FakeMergeRequest[];
  issues: FakeIssue[];
  requests: RecordedRequest[];
  /** Requests no route of the fake answered (they got GitLab's catch-all 404). */
  unimplemented: RecordedRequest[];
  faults: Faults;
  tokenStats: TokenStats;
  /** OAuth applications, authorization codes and tokens. */
  oauth: OAuthState;
  /** Browser sessions and sign-in passwords. */
  web: WebState;
  nextId: {
    user: number;
    token: number;
    namespace: number;
    project: number;
    protectedBranch: number;
    accessRule: number;
    mergeRequest: number;
    issue: number;
  };
  /** Fixed "now" for expiry decisions when set; otherwise the wall clock. */
  now: () => Date;
}

export interface StateOptions {
  oauthTokenLifetimeSeconds?: number;
  oauthRefreshRevocation?: OAuthRefreshRevocation;
}

export function createState(options: StateOptions = {}): FakeState {
  return {
    users: new Map(),
    tokens: new Map(),
    namespaces: new Map(),
    projects: new Map(),
    projectsByPath: new Map(),
    mergeRequests: [],
    issues: [],
    requests: [],
    unimplemented: [],
    faults: {
      rateLimited: { remaining: 0, retryAfterSeconds: 1 },
      serverErrors: { remaining: 0, status: 502 },
      held: [],
      sourceBranchLag: { remaining: 0 },
      rotationAnswerLoss: { remaining: 0 },
      expiryDuringSelfRequest: new Set(),
    },
    tokenStats: { rotations: 0, familyRevocations: 0 },
    oauth: createOAuthState({
      tokenLifetimeSeconds: options.oauthTokenLifetimeSeconds,
      refreshRevocation: options.oauthRefreshRevocation,
    }),
    web: createWebState(),
    nextId: { user: 1, token: 1, namespace: 1, project: 1, protectedBranch: 1, accessRule: 1, mergeRequest: 1, issue: 1 },
    now: () => new Date(),
  };
}

export function isoNow(state: FakeState): string {
  return state.now().toISOString();
}

/** Today as YYYY-MM-DD in UTC. */
export function today(state: FakeState): string {
  return state.now().toISOString().slice(0, 10);
}

export function addUser(state: FakeState, input: AddUserInput): FakeUser {
  for (const user of state.users.values()) {
    if (user.username === input.username) throw new Error(`username ${input.username} is taken`);
  }
  const user: FakeUser = {
    id: state.nextId.user++,
    username: input.username,
    name: input.name ?? input.username,
    email: input.email ?? `${input.username}@example.com`,
    state: 'active',
    createdAt: isoNow(state),
  };
  state.users.set(user.id, user);
  return user;
}

/** A token in GitLab's current format: `glpat-` and 20 URL-safe characters. */
export function newTokenValue(): string {
  return `glpat-${randomBytes(15).toString('base64url')}`;
}

export function addToken(state: FakeState, userId: number, input: AddTokenInput): FakeToken {
  if (!state.users.has(userId)) throw new Error(`no user ${userId}`);
  if (input.expiresAt != null && !/^\d{4}-\d{2}-\d{2}$/.test(input.expiresAt)) {
    throw new Error(`expiresAt must be YYYY-MM-DD, got ${input.expiresAt}`);
  }
  const token: FakeToken = {
    id: state.nextId.token++,
    token: newTokenValue(),
    userId,
    name: input.name ?? 'forgelink-test',
    description: input.description ?? '',
    scopes: [...input.scopes],
    expiresAt: input.expiresAt ?? null,
    revoked: input.revoked ?? false,
    createdAt: isoNow(state),
    lastUsedAt: null,
    previousTokenId: null,
  };
  state.tokens.set(token.token, token);
  return token;
}

export function findToken(state: FakeState, value: string): FakeToken {
  const token = state.tokens.get(value);
  if (!token) throw new Error('unknown token');
  return token;
}

/** GitLab's `expired?`: the token expires at the start of its `expires_at` day. */
export function isExpired(state: FakeState, token: FakeToken): boolean {
  return token.expiresAt !== null && token.expiresAt <= today(state);
}

function yesterday(state: FakeState): string {
  return new Date(state.now().getTime() - 86_400_000).toISOString().slice(0, 10);
}

export function expireToken(state: FakeState, value: string): void {
  findToken(state, value).expiresAt = yesterday(state);
}

export function revokeToken(state: FakeState, value: string): void {
  findToken(state, value).revoked = true;
}

/** Creates (or finds) the group chain for `a/b/c`; a top segment that is a username is that user's namespace. */
function ensureNamespace(state: FakeState, fullPath: string): FakeNamespace {
  const existing = state.namespaces.get(fullPath);
  if (existing) return existing;
  const cut = fullPath.lastIndexOf('/');
  const parent = cut === -1 ? null : ensureNamespace(state, fullPath.slice(0, cut));
  const path = fullPath.slice(cut + 1);
  const owner = parent === null ? [...state.users.values()].find((u) => u.username === path) : undefined;
  const namespace: FakeNamespace = {
    id: state.nextId.namespace++,
    name: owner ? owner.name : path,
    path,
    fullPath,
    kind: owner ? 'user' : 'group',
    parentId: parent?.id ?? null,
  };
  state.namespaces.set(fullPath, namespace);
  return namespace;
}

export function namespaceById(state: FakeState, id: number): FakeNamespace {
  for (const namespace of state.namespaces.values()) {
    if (namespace.id === id) return namespace;
  }
  throw new Error(`no namespace ${id}`);
}

export function addProject(state: FakeState, input: AddProjectInput): FakeProject {
  const segments = input.path.split('/');
  if (segments.length < 2 || segments.some((s) => s === '')) {
    throw new Error(`project path must be namespace/project, got ${input.path}`);
  }
  if (state.projectsByPath.has(input.path.toLowerCase())) throw new Error(`project ${input.path} exists`);
  for (const member of input.members ?? []) {
    if (!state.users.has(member.userId)) throw new Error(`no user ${member.userId}`);
  }
  const cut = input.path.lastIndexOf('/');
  const namespace = ensureNamespace(state, input.path.slice(0, cut));
  const path = input.path.slice(cut + 1);
  const now = isoNow(state);
  const project: FakeProject = {
    id: state.nextId.project++,
    name: input.name ?? path,
    path,
    pathWithNamespace: input.path,
    namespaceId: namespace.id,
    description: input.description ?? null,
    defaultBranch: input.defaultBranch === undefined ? 'main' : input.defaultBranch,
    archived: input.archived ?? false,
    visibility: input.visibility ?? 'private',
    members: (input.members ?? []).map((m) => ({ ...m })),
    createdAt: now,
    lastActivityAt: now,
    protectDefaultBranch: input.protectDefaultBranch ?? true,
    initialBranches: [...(input.branches ?? [])],
    protectedBranches: [],
    nextIid: { mergeRequest: 1, issue: 1 },
  };
  state.projects.set(project.id, project);
  state.projectsByPath.set(project.pathWithNamespace.toLowerCase(), project.id);
  return project;
}

/** By id, or by full path in any case, as GitLab resolves a project's `:id`. */
export function findProject(state: FakeState, idOrPath: number | string): FakeProject | undefined {
  if (typeof idOrPath === 'number') return state.projects.get(idOrPath);
  const id = state.projectsByPath.get(idOrPath.toLowerCase());
  return id === undefined ? undefined : state.projects.get(id);
}

export function accessLevelOf(project: FakeProject, userId: number): AccessLevel | null {
  return project.members.find((m) => m.userId === userId)?.accessLevel ?? null;
}

/**
 * GitLab's visibility rule for a signed-in user: public and internal projects are visible to
 * everyone signed in; private ones only to members (doc/user/public_access.md).
 */
export function canSee(project: FakeProject, userId: number): boolean {
  if (project.visibility !== 'private') return true;
  const level = accessLevelOf(project, userId);
  return level !== null && level >= 10;
}
