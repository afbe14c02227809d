export { createMetrics, type GitLabCallStatus, type Metrics, type MetricsSources } from './metrics.ts';
