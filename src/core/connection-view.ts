import { capabilitiesFromScopes, connectionWarnings } from './capabilities.ts';
import type { Connection, ConnectionView } from './types.ts';

/** A connection as the API and the dashboard show it (docs/contract.md): no secret; capabilities and warnings derived. */
export function connectionView(connection: Connection, now: Date): ConnectionView {
  return {
    id: connection.id,
    provider: connection.provider,
    kind: connection.kind,
    baseUrl: connection.baseUrl,
    host: connection.host,
    label: connection.label,
    account: connection.account,
    scopes: connection.scopes,
    expiresAt: connection.expiresAt,
    tokenExpiresAt: connection.tokenExpiresAt,
    status: connection.status,
    statusReason: connection.statusReason,
    capabilities: capabilitiesFromScopes(connection.scopes),
    warnings: connectionWarnings({ scopes: connection.scopes, expiresAt: connection.expiresAt, kind: connection.kind, now }),
    instanceVersion: connection.instanceVersion,
    hasCustomCa: connection.caPem !== null,
    rotation: connection.rotation,
    credentials: connection.credentials,
    policy: { ...connection.policy },
    checkedAt: connection.checkedAt,
    createdAt: connection.createdAt,
  };
}

/**
 * The other connections in `all` of the same GitLab account on the same instance as `connection`: the duplicates the
 * CLI warns about after a connect (src/cli/connection-commands.ts) and the dashboard marks on the cards. A connection
 * whose account is unknown matches none.
 */
export function sameAccountConnections(connection: ConnectionView, all: readonly ConnectionView[]): ConnectionView[] {
  if (connection.account === null) return [];
  return all.filter(
    (other) => other.id !== connection.id && other.baseUrl === connection.baseUrl && other.account?.id === connection.account?.id,
  );
}
