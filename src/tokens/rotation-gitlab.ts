import { tokenState, UpstreamError, type GitLabClient, type TokenState } from '../core/index.ts';

/**
 * What GitLab's `/personal_access_tokens/self` (which answers for any scope) makes of the token, through the one
 * token-state decision: the same status a check would record.
 */
export async function selfState(client: Pick<GitLabClient, 'inspectToken'>): Promise<TokenState> {
  try {
    const info = await client.inspectToken();
    return tokenState(info === null ? { kind: 'not_personal' } : { kind: 'self', ...info });
  } catch (error) {
    return tokenState({ kind: 'failed', error, asked: 'token' });
  }
}

/** GitLab definitely did not rotate: it answered a 4xx (validation, refused or unknown token, missing scope, 429). */
export function notRotated(error: unknown): boolean {
  return error instanceof UpstreamError && error.status !== undefined && error.status >= 400 && error.status < 500 && error.status !== 408;
}
