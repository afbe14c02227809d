import { ForgelinkError, UpstreamError, type GitLabClient } from '../core/index.ts';

/** What GitLab makes of a token: `/personal_access_tokens/self` answers, or 401s with the reason, for any scope. */
export async function tokenVerdict(client: Pick<GitLabClient, 'inspectToken'>): Promise<'active' | 'revoked' | 'expired' | { unknown: unknown }> {
  try {
    const info = await client.inspectToken();
    if (info === null) return { unknown: new UpstreamError('bad_response', 'GitLab no longer takes this token for a personal access token.') };
    return info.active ? 'active' : info.revoked ? 'revoked' : 'expired';
  } catch (error) {
    if (error instanceof UpstreamError && error.reason === 'token_revoked') return 'revoked';
    if (error instanceof UpstreamError && error.reason === 'token_expired') return 'expired';
    return { unknown: error };
  }
}

/** Why the token must not be rotated, as GitLab's `/personal_access_tokens/self` tells; null when it is active. */
export async function probeFailure(client: Pick<GitLabClient, 'inspectToken'>): Promise<ForgelinkError | null> {
  try {
    const info = await client.inspectToken();
    if (info === null) return new UpstreamError('bad_response', 'GitLab does not take this token for a personal access token, so it cannot rotate it.');
    if (info.revoked) return new UpstreamError('token_revoked', 'GitLab says this token was revoked.');
    if (!info.active) return new UpstreamError('token_expired', 'GitLab says this token is no longer active.');
    return null;
  } catch (error) {
    return error instanceof ForgelinkError ? error : new UpstreamError('unreachable', 'GitLab could not be asked about the token.', { cause: error });
  }
}

/** GitLab definitely did not rotate: it answered a 4xx (validation, refused or unknown token, missing scope, 429). */
export function notRotated(error: unknown): boolean {
  return error instanceof UpstreamError && error.status !== undefined && error.status >= 400 && error.status < 500 && error.status !== 408;
}
