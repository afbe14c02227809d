import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RUN_STATUSES, type RunStatus } from '../core/index.ts';

/**
 * The figures `GET /metrics` serves (docs/contract.md, "Health and metrics"), in Prometheus's text format through
 * prom-client, every name starting with `forgelink_`. Counters and the run duration histogram count what this
 * process did; the gauges read shared state (the database, the queue) when scraped, so every process on one
 * database reports the same queue depth, runs by status and live workers.
 */
export type MetricsSources = {
  /** Runs waiting for a worker. */
  queueDepth(): Promise<number>;
  /** Runs in each status. */
  runsByStatus(): Promise<Partial<Record<RunStatus, number>>>;
  /** Processes executing runs that are alive (heartbeating, once there is a shared queue). */
  liveWorkers(): Promise<number>;
};

/** A GitLab API answer by HTTP status, or `network_error` when none came (refused, timed out, blocked). */
export type GitLabCallStatus = number | 'network_error';

export type Metrics = {
  gitlabCall(status: GitLabCallStatus): void;
  tokenRefresh(outcome: 'refreshed' | 'failed'): void;
  runFinished(status: RunStatus, seconds: number): void;
  /** Replaces some sources: the shared queue gives the queue depth and the live workers. */
  setSources(sources: Partial<MetricsSources>): void;
  readonly contentType: string;
  render(): Promise<string>;
};

/** Run durations: from seconds (a refused start) to hours (the longest timeout is four). */
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400];

export function createMetrics(initial: MetricsSources): Metrics {
  const registry = new Registry();
  let sources = { ...initial };
  // CPU, memory, event loop lag and handles of this process, as forgelink_process_* and forgelink_nodejs_*.
  collectDefaultMetrics({ register: registry, prefix: 'forgelink_' });

  new Gauge({
    name: 'forgelink_queue_depth',
    help: 'Runs waiting to start.',
    registers: [registry],
    async collect() {
      this.set(await sources.queueDepth());
    },
  });
  new Gauge({
    name: 'forgelink_runs',
    help: 'Runs by status, as the database holds them.',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await sources.runsByStatus();
      for (const status of RUN_STATUSES) this.set({ status }, counts[status] ?? 0);
    },
  });
  new Gauge({
    name: 'forgelink_workers_live',
    help: 'Processes executing runs that are alive.',
    registers: [registry],
    async collect() {
      this.set(await sources.liveWorkers());
    },
  });
  const duration = new Histogram({
    name: 'forgelink_run_duration_seconds',
    help: 'How long the runs this process executed took, from start to end, by how they ended.',
    labelNames: ['status'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const calls = new Counter({
    name: 'forgelink_gitlab_api_requests_total',
    help: "Requests forgelink made to GitLab's API, by the HTTP status of the answer (network_error: none came).",
    labelNames: ['status'],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'forgelink_gitlab_api_errors_total',
    help: "Requests to GitLab's API that failed: answers of 400 and above, and network errors, by status.",
    labelNames: ['status'],
    registers: [registry],
  });
  const refreshes = new Counter({
    name: 'forgelink_oauth_token_refreshes_total',
    help: 'OAuth access token refreshes this process asked GitLab for, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });

  return {
    gitlabCall(status) {
      const label = String(status);
      calls.inc({ status: label });
      if (status === 'network_error' || status >= 400) errors.inc({ status: label });
    },
    tokenRefresh(outcome) {
      refreshes.inc({ outcome });
    },
    runFinished(status, seconds) {
      duration.observe({ status }, Math.max(0, seconds));
    },
    setSources(partial) {
      sources = { ...sources, ...partial };
    },
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}
