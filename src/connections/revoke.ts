import { UpstreamError, type Connection, type GitLabOAuthClient } from '../core/index.ts';

/** What revoking an OAuth connection's tokens at GitLab came to. */
export type Revocation =
  | { status: 'not_applicable' }
  | { status: 'revoked' }
  | { status: 'failed'; message: string };

/**
 * Revokes the tokens at GitLab (RFC 7009, GitLab docs: api/oauth2.md "Revoke a token"), refresh token first:
 * it is the long-lived one, and Doorkeeper revokes the access token of the same grant with it. Best effort:
 * the connection is already gone from forgelink, so a failure is reported, not thrown.
 */
export async function revokeOAuthTokens(
  client: GitLabOAuthClient | null,
  connection: Connection,
  tokens: readonly { token: string; hint: 'access_token' | 'refresh_token' }[],
): Promise<Revocation> {
  const where = `${connection.host}'s Applications settings (User Settings → Applications)`;
  if (client === null) {
    return {
      status: 'failed',
      message: `forgelink has no OAuth application for ${connection.baseUrl} any more, so it could not revoke the authorization; revoke it in ${where}.`,
    };
  }
  const failures: string[] = [];
  for (const { token, hint } of tokens) {
    try {
      await client.revoke(token, hint);
    } catch (error) {
      failures.push(error instanceof UpstreamError ? error.message : 'an unexpected error');
    }
  }
  if (failures.length === 0) return { status: 'revoked' };
  return {
    status: 'failed',
    message: `The connection was deleted from forgelink, but GitLab did not confirm the revocation (${failures[0]}). Revoke forgelink's access in ${where}.`,
  };
}
