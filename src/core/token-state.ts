import { ForgelinkError, InputError, SealedTokenError, UpstreamError } from './errors.ts';
import { CONNECTION_STATUSES, type ConnectionStatus } from './types.ts';

/**
 * What forgelink learnt when it asked about a connection's token. `asked` says what the question was about: the token
 * itself (`/personal_access_tokens/self`, `/oauth/token/info`, `/user`, a refresh), or a resource the token was used
 * for (a project, its branches), where only GitLab's refusal of the token (a 401) says something about the token.
 */
export type TokenAnswer =
  /** `GET /personal_access_tokens/self` answered 200 with these fields. */
  | { kind: 'self'; active: boolean; revoked: boolean; expiresAt: string | null }
  /** `GET /personal_access_tokens/self` answered 400: the token is not a personal access token. */
  | { kind: 'not_personal' }
  /** GitLab took the token (`/oauth/token/info` or another call answered 2xx). */
  | { kind: 'accepted' }
  /** The question failed: GitLab refused, could not be reached, the refresh was refused, or the sealed token did not open. */
  | { kind: 'failed'; error: unknown; asked: 'token' | 'resource' };

/**
 * The connection status an answer means. `unchanged`: the answer says nothing about the token (GitLab rate limits us,
 * or forgelink failed on its own), so the recorded status stays and the caller passes `error` on. Otherwise `error`
 * (null for `active`) is what to tell the user: its message is the status reason recorded on the connection.
 */
export type TokenState =
  | { status: 'active'; error: null }
  | { status: Exclude<ConnectionStatus, 'active'>; error: ForgelinkError }
  | { status: 'unchanged'; error: unknown };

/**
 * The one decision of what GitLab's answers make of a token; connect, check, the monitor, a run's preflight, the token
 * provider and rotation all go through it.
 *
 * GitLab's own rule (app/models/personal_access_token.rb, `active?`): a token is active when it is neither revoked nor
 * expired. So a token reported neither active nor revoked is expired, whatever our clock says about its date, and
 * GitLab's flags win over our reading of `expires_at` (GitLab's clock decides, and its date has no time zone). The API
 * refuses such tokens with 401 `invalid_token` and a description telling expired ("Token is expired…") from revoked
 * ("Token was revoked…"); any other 401 ("Bad Access Token.", `401 Unauthorized`) is an unknown token (lib/api/api_guard.rb).
 */
export function tokenState(answer: TokenAnswer): TokenState {
  switch (answer.kind) {
    case 'accepted':
      return { status: 'active', error: null };
    case 'not_personal':
      return {
        status: 'invalid',
        error: new InputError(
          'unsupported_token',
          'This is not a personal access token (GitLab answered that /personal_access_tokens/self needs one). Use a personal, project or group access token, or connect with OAuth.',
          { field: 'token' },
        ),
      };
    case 'self':
      if (answer.revoked) return { status: 'revoked', error: new UpstreamError('token_revoked', 'GitLab says this token was revoked.') };
      if (!answer.active) {
        const when = answer.expiresAt === null ? '' : ` on ${answer.expiresAt}`;
        return { status: 'expired', error: new UpstreamError('token_expired', `GitLab says this token expired${when} (it is neither active nor revoked).`) };
      }
      return { status: 'active', error: null };
    case 'failed':
      return failedState(answer.error, answer.asked);
  }
}

function failedState(error: unknown, asked: 'token' | 'resource'): TokenState {
  if (error instanceof SealedTokenError) return { status: 'invalid', error };
  if (error instanceof UpstreamError) {
    switch (error.reason) {
      case 'token_expired':
        return { status: 'expired', error };
      case 'token_revoked':
        return { status: 'revoked', error };
      case 'token_invalid':
        return { status: 'invalid', error };
      case 'rate_limited':
        return { status: 'unchanged', error };
      default:
        break;
    }
    // A project GitLab hides, a 403 on a branch, a network failure during a run: about the resource or the path to it.
    if (asked === 'resource') return { status: 'unchanged', error };
    if (error.reason === 'insufficient_scope' || error.reason === 'forbidden') return { status: 'invalid', error };
    return { status: 'unreachable', error };
  }
  if (asked === 'token' && error instanceof InputError) return { status: 'invalid', error };
  return { status: 'unchanged', error };
}

/**
 * A revoked or expired token never works again (GitLab can neither un-revoke nor extend one): runs on such a
 * connection are refused, rotation never presents its token, and the monitor stops checking it.
 */
export function isFinalStatus(status: ConnectionStatus): status is 'expired' | 'revoked' {
  return status === 'expired' || status === 'revoked';
}

/** The statuses in which a token works, or may again: the monitor checks these and warns before their expiry. */
export const LIVE_STATUSES: readonly ConnectionStatus[] = CONNECTION_STATUSES.filter((status) => !isFinalStatus(status));
