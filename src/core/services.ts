/** What forgelink's own services offer one another, implemented in `tokens/` and `connections/`. */
import type { Connection, ConnectionView } from './types.ts';

/**
 * Hands out a connection's token for a call or a run: a personal access token as stored (rotated first when it
 * opted in and is due), an OAuth access token refreshed first when it is about to expire. Refreshes and rotations
 * are serialized per connection across every process.
 */
export interface TokenProvider {
  /** A token that should work now. */
  currentToken(connection: Connection): Promise<string>;
  /**
   * A token newer than `staleToken`, which GitLab just refused (401): the one another caller already refreshed
   * to, or a refresh now. For a personal access token, the token a rotation replaced it with (after waiting for one
   * under way); when there is none, throws `staleError` back.
   */
  refresh(connection: Connection, staleToken: string, staleError?: unknown): Promise<string>;
  /** Calls `use` with the current token and, when GitLab refuses it (401), once more with a newer one if there is one. */
  withToken<T>(connection: Connection, use: (token: string) => Promise<T>): Promise<T>;
}

/** OAuth 2.0 authorization code flow with PKCE for connecting a GitLab account (issue: Dashboard and OAuth). */
export interface GitLabOAuthFlow {
  /** Base URLs of the instances the operator configured an OAuth application for. */
  instances(): string[];
  /** Begins the flow: a single-use `state` bound to the browser session, PKCE S256; where to send the browser. */
  start(input: { userId: string; sessionId: string; baseUrl: string }): Promise<{ authorizeUrl: string }>;
  /**
   * Finishes it from the callback's query parameters and creates the connection. Throws InputError with code
   * `access_denied`, `invalid_state` (forged, reused, expired or another session's), `exchange_failed`, …
   */
  finish(input: { userId: string; sessionId: string; query: Readonly<Record<string, string>> }): Promise<ConnectionView>;
}
