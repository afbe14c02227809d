import type { AgentProfile, CredentialsMode } from '../core/index.ts';
import type { PolicyOptions } from '../broker/index.ts';

/** Operator settings for runs (read by config/, passed in by compose.ts). */
export type RunSettings = {
  /** The agent profiles runs may name (built-in and the operator's, config/agents.ts). */
  agents: readonly AgentProfile[];
  /** The credentials mode of runs that do not choose one (FORGELINK_CREDENTIALS; `brokered` unless set). */
  credentials: CredentialsMode;
  /** What the operator lets brokered runs do beyond their own branches (FORGELINK_POLICY; docs/security.md, "Run policy"). */
  policy: PolicyOptions;
  /** Where run workspaces live: `<dataDir>/runs`. */
  workDir: string;
  /** Runs executing at once in this process; the rest wait in the queue. */
  concurrency: number;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** Origins every run may reach besides its GitLab (`registry.npmjs.org:443`). */
  extraHosts: string[];
  /** Patterns of origins a run may add with `--allow-host` (`*` for any; empty for none). */
  userHostPatterns: string[];
  /** A run's memory cap, all its processes together (FORGELINK_RUN_MEMORY_MAX); the sandbox's default when absent. */
  memoryMaxBytes?: number;
  /** A run's disk cap, its workspace and home together (FORGELINK_RUN_DISK_MAX); the sandbox's default when absent. */
  diskMaxBytes?: number;
  /**
   * The repository cache (docs/architecture.md, "The repository cache"): a mirror per project in `dir`
   * (`<dataDir>/repo-cache`), at most `maxBytes` together. Absent or disabled: every run clones in full.
   */
  repoCache?: { enabled: boolean; dir: string; maxBytes: number };
  /** A run's CPU cap in thousandths of a CPU (FORGELINK_RUN_CPU_MAX); absent or null for none. */
  cpuMillicores?: number | null;
};
