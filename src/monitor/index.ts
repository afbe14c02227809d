export { createHealthMonitor, MONITOR_LEASE } from './health-monitor.ts';
export type { HealthMonitor, HealthMonitorDeps, TickReport } from './health-monitor.ts';
export { EXPIRY_NOTICE_DAYS } from './notices.ts';
