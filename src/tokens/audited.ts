import { createHash } from 'node:crypto';
import { auditEntry, type AuditStore, type Clock, type Connection, type TokenProvider } from '../core/index.ts';

/** Who wants a connection's token, and why: `check`, `projects`, `run`, `doctor`, `monitor`, `rotation`, … */
export type TokenUse = { actor: string; reason: string; runId?: string };

/**
 * A token provider that writes the audit trail (issue "Token lifecycle": every decryption of a token — who,
 * which connection, why). It records `token.decrypted` the first time it hands out each distinct token in its
 * context (one check, one run…), not once per GitLab call, and `token.refreshed` when it had to refresh. The
 * trail holds a short fingerprint of the token, never the token.
 */
export function auditedTokens(provider: TokenProvider, audit: AuditStore | undefined, clock: Clock, use: TokenUse): TokenProvider {
  if (audit === undefined) return provider;
  const seen = new Set<string>();
  const store = audit;

  async function note(connection: Connection, token: string, action: 'token.decrypted' | 'token.refreshed'): Promise<string> {
    const fingerprint = createHash('sha256').update(token).digest('hex').slice(0, 12);
    if (action === 'token.decrypted' && seen.has(fingerprint)) return token;
    seen.add(fingerprint);
    await store.record(
      auditEntry(clock.now(), {
        ownerId: connection.userId,
        actor: use.actor,
        action,
        connectionId: connection.id,
        runId: use.runId ?? null,
        reason: use.reason,
        details: { kind: connection.kind, host: connection.host, token: `sha256:${fingerprint}` },
      }),
    );
    return token;
  }

  return {
    currentToken: async (connection) => note(connection, await provider.currentToken(connection), 'token.decrypted'),
    refresh: async (connection, staleToken, staleError) =>
      note(connection, await provider.refresh(connection, staleToken, staleError), 'token.refreshed'),
    withToken: (connection, callback) =>
      provider.withToken(connection, async (token) => {
        await note(connection, token, 'token.decrypted');
        return callback(token);
      }),
  };
}
