import { createHealthMonitor, type HealthMonitor } from '../../src/monitor/index.ts';
import type { Clock } from '../../src/core/index.ts';
import type { TestForgelink } from './forgelink.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A health monitor over a test forgelink's storage, checking through its connection service as `system`/`monitor`
 * (as the server wires it), without a webhook; a connection is due an hour after its last check.
 */
export function testMonitor(forgelink: TestForgelink, clock: Clock): HealthMonitor {
  return createHealthMonitor({
    store: forgelink.storage.connections,
    check: (userId, connectionId) => forgelink.connections.check(userId, connectionId, { actor: 'system', reason: 'monitor' }),
    events: forgelink.storage.connectionEvents,
    leases: forgelink.storage.leases,
    users: forgelink.storage.users,
    notifier: null,
    clock,
    logger: quiet,
    intervalMs: 3600_000,
    jitterMs: 0,
  });
}
