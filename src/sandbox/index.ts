/**
 * Sandboxed runs (docs/security.md, invariants 1 and 5): bubblewrap with every namespace new, the agent as uid
 * 1000 without capabilities, a read-only system, the run's workspace at /workspace, and a network that
 * reaches only the run's egress proxy (a unix socket bridged to 127.0.0.1:3128 inside), which lets through
 * the run's allowlist of origins after the outbound-address policy. See bwrap-args.ts for the mounts,
 * limits.ts for the limits, egress-proxy.ts for the proxy.
 * Host needs: bubblewrap (>= 0.8 for --disable-userns), socat, dash (/bin/dash starts each command), and
 * /usr/bin/python3 with python3-seccomp (libseccomp) to build the seccomp filter (seccomp.ts).
 */
export { createBubblewrapDriver, type BubblewrapDriverOptions } from './bubblewrap.ts';
export { createEgressProxy, type EgressProxy, type EgressProxyOptions, type EgressRecord, type Resolver } from './egress-proxy.ts';
export { parseAllowEntry, parseAllowlist, isAllowed, formatOrigin, DEFAULT_ALLOW_PORT, type AllowEntry, type Origin } from '../core/index.ts';
export { SANDBOX_PATHS, SANDBOX_DEFAULT_PATH, PROXY_PORT } from './wrapper.ts';
export { DEFAULT_LIMITS } from './limits.ts';
export { removeTree } from './run-dir.ts';
export { diskUsage } from './disk-usage.ts';
export type { SandboxLogger } from './logger.ts';
