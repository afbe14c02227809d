export { createConnectionService, DEFAULT_BASE_URL } from './service.ts';
export type { ConnectionService, ConnectionServiceDeps, ConnectInput, DisconnectResult } from './service.ts';
export { cleanToken, cleanCaPem, cleanLabel } from './input.ts';
export type { Revocation } from './revoke.ts';
export { createOAuthFlow, STATE_LIFETIME_MS } from './oauth-flow.ts';
export type { OAuthFlowDeps } from './oauth-flow.ts';
export { createConnectionEvents } from './events.ts';
export type { ConnectionEvents, ConnectionEventView } from './events.ts';
