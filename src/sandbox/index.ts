export { createBubblewrapDriver, type BubblewrapDriverOptions } from './bubblewrap.ts';
export { createEgressProxy, type EgressProxy, type EgressProxyOptions, type EgressRecord, type Resolver } from './egress-proxy.ts';
export { parseAllowEntry, parseAllowlist, isAllowed, formatOrigin, DEFAULT_ALLOW_PORT, type AllowEntry, type Origin } from './allowlist.ts';
export { SANDBOX_PATHS, SANDBOX_DEFAULT_PATH, PROXY_PORT } from './wrapper.ts';
export { DEFAULT_LIMITS } from './limits.ts';
export { removeTree } from './run-dir.ts';
export type { SandboxLogger } from './logger.ts';
