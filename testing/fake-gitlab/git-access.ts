import type { KnownToken } from './auth.ts';
import { tokenAccessible } from './oauth/state.ts';
import { canPushCode, canReadCode, canReadProject } from './permissions.ts';
import { isExpired, type FakeProject, type FakeState, type FakeUser } from './state.ts';

export type GitCommand = 'git-upload-pack' | 'git-receive-pack';
type Ability = 'read_project' | 'download_code' | 'push_code';

/** Who a git request runs as: a token's user with the abilities its scopes give, or anonymous. */
export type GitActor =
  | { user: FakeUser; token: KnownToken; abilities: ReadonlySet<Ability> }
  | { user: null; abilities: ReadonlySet<Ability> };

/** Gitlab::GitAccess::ERROR_MESSAGES (lib/gitlab/git_access.rb). */
export const GIT_ACCESS_MESSAGES = {
  download: 'You are not allowed to download code from this project.',
  authUpload: 'You are not allowed to upload code.',
  authDownload: 'You are not allowed to download code.',
  projectNotFound: "The project you were looking for could not be found or you don't have permission to view it.",
  commandNotAllowed: "The command you're trying to execute is not allowed.",
  archived: "You can't push code to an archived project.",
  pushCode: 'You are not allowed to push code to this project.',
} as const;

/**
 * Repositories::GitHttpClientController#render_access_denied; `help_page_url` points at
 * doc/topics/git/troubleshooting_git.md.
 */
export function accessDeniedText(baseUrl: string): string {
  const help = `${baseUrl}/help/topics/git/troubleshooting_git.md#error-on-git-fetch-http-basic-access-denied`;
  return (
    "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're " +
    'required to use a token instead of a password. If a token was provided, it was either incorrect, expired, or ' +
    `improperly scoped. See ${help}`
  );
}

/**
 * Gitlab::Auth.abilities_for_scopes: `api` gives everything, `read_api` the read-only abilities,
 * `read_repository` download_code, `write_repository` download_code and push_code.
 */
export function abilitiesForScopes(scopes: readonly string[]): Set<Ability> {
  const abilities = new Set<Ability>();
  for (const scope of scopes) {
    if (scope === 'api') for (const a of ['read_project', 'download_code', 'push_code'] as const) abilities.add(a);
    if (scope === 'read_api') for (const a of ['read_project', 'download_code'] as const) abilities.add(a);
    if (scope === 'read_repository') abilities.add('download_code');
    if (scope === 'write_repository') for (const a of ['download_code', 'push_code'] as const) abilities.add(a);
  }
  return abilities;
}

function basicCredentials(header: string | null): { login: string; password: string } | null {
  const match = header?.match(/^Basic\s+(\S+)\s*$/i);
  if (!match?.[1]) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  return { login: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The active user behind a token, or null (blocked or gone). */
function activeUser(state: FakeState, userId: number): FakeUser | null {
  const user = state.users.get(userId);
  return user && user.state === 'active' ? user : null;
}

/**
 * Gitlab::Auth.find_for_git_client: the password is tried as an OAuth access token first
 * (oauth_access_token_check: any user name, abilities from its scopes), then as a personal access token
 * whatever the user name (personal_access_token_check finds active tokens only). Expired and revoked
 * tokens fail like unknown ones. Without credentials, only a download from a public project goes
 * through. `null` means: answer 401 with a Basic challenge.
 */
export function authenticateGitClient(
  state: FakeState,
  authorization: string | null,
  project: FakeProject | undefined,
  command: GitCommand,
): GitActor | null {
  const credentials = basicCredentials(authorization);
  if (credentials) {
    const oauth = state.oauth.tokens.get(credentials.password);
    if (oauth) {
      const user = tokenAccessible(oauth, state.now().getTime()) ? activeUser(state, oauth.userId) : null;
      return user ? { user, token: { type: 'oauth', record: oauth }, abilities: abilitiesForScopes(oauth.scopes) } : null;
    }
    const token = state.tokens.get(credentials.password);
    if (!token || token.revoked || isExpired(state, token)) return null;
    const user = activeUser(state, token.userId);
    if (!user) return null;
    token.lastUsedAt = state.now().toISOString();
    return { user, token: { type: 'personal', record: token }, abilities: abilitiesForScopes(token.scopes) };
  }
  if (command === 'git-upload-pack' && project?.visibility === 'public') {
    return { user: null, abilities: new Set(['download_code']) };
  }
  return null;
}

export type GitDenial = { status: 403 | 404; message: string };

/** Gitlab::GitAccess#check with changes `_any`, in its order: abilities, project, download or push. */
export function checkGitAccess(project: FakeProject | undefined, actor: GitActor, command: GitCommand): GitDenial | null {
  const userId = actor.user?.id ?? null;
  if (command === 'git-upload-pack' && !actor.abilities.has('download_code')) {
    return { status: 403, message: GIT_ACCESS_MESSAGES.authDownload };
  }
  if (command === 'git-receive-pack' && !actor.abilities.has('push_code')) {
    return { status: 403, message: GIT_ACCESS_MESSAGES.authUpload };
  }
  if (!project || !canReadProject(project, userId)) return { status: 404, message: GIT_ACCESS_MESSAGES.projectNotFound };
  if (command === 'git-upload-pack') {
    return canReadCode(project, userId) ? null : { status: 403, message: GIT_ACCESS_MESSAGES.download };
  }
  if (project.archived) return { status: 403, message: GIT_ACCESS_MESSAGES.archived };
  return canPushCode(project, userId) ? null : { status: 403, message: GIT_ACCESS_MESSAGES.pushCode };
}
