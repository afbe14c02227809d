/** Runs: an agent working on one GitLab project in a sandbox (docs/architecture.md, "The run pipeline"). */
import { ForgelinkError } from './errors.ts';
import type { CredentialsMode, PolicyOptions, Warning } from './types.ts';

export type RunStatus =
  | 'queued'
  | 'preparing'
  | 'cloning'
  | 'running'
  | 'collecting'
  | 'succeeded'
  | 'failed'
  | 'canceled'
  | 'timed_out';

/** Every status, in the order a run passes through them. */
export const RUN_STATUSES: readonly RunStatus[] = ['queued', 'preparing', 'cloning', 'running', 'collecting', 'succeeded', 'failed', 'canceled', 'timed_out'];

export const TERMINAL_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'canceled', 'timed_out'];

export type OutputBranch = { name: string; sha: string; created: boolean; webUrl: string };
export type OutputMergeRequest = {
  iid: number;
  title: string | null;
  sourceBranch: string;
  targetBranch: string | null;
  webUrl: string;
  detectedBy: 'api' | 'push';
};
export type OutputIssue = { iid: number; title: string; webUrl: string };
export type RunOutputs = { branches: OutputBranch[]; mergeRequests: OutputMergeRequest[]; issues: OutputIssue[] };

export type RunError = { code: string; message: string };

export type RunRepoCache = 'cold' | 'warm' | 'off';
/** The partial-clone filters a run may ask for. */
export const RUN_CLONE_FILTERS = ['blob:none'] as const;
export type RunCloneFilter = (typeof RUN_CLONE_FILTERS)[number];
/** A request the run's policy refused at the broker. */
export type PolicyRefusal = { at: string; method: string; target: string; rule: string; message: string };

/**
 * What the agent is told of a refusal: the reason after `forgelink policy (<rule>): `, so that every place showing
 * only the message names the rule (src/broker/decision.ts, `refuse`).
 */
export function policyRefusalMessage(rule: string, reason: string): string {
  return `${policyRefusalPrefix(rule)}${reason}`;
}

function policyRefusalPrefix(rule: string): string {
  return `forgelink policy (${rule}): `;
}

/**
 * A refusal's reason without the prefix `policyRefusalMessage` gave it: the run log, `runs show` and the run page
 * name the rule beside it already.
 */
export function refusalReason(refusal: Pick<PolicyRefusal, 'rule' | 'message'>): string {
  const prefix = policyRefusalPrefix(refusal.rule);
  return refusal.message.startsWith(prefix) ? refusal.message.slice(prefix.length) : refusal.message;
}
/**
 * `options`: what the broker applied to the run (the operator's options narrowed by its connection and by the run),
 * fixed when it was started; null for direct runs (no broker) and runs from before.
 */
export type RunPolicyRecord = { refused: PolicyRefusal[]; options: PolicyOptions | null };

export type Run = {
  id: string;
  userId: string;
  connectionId: string;
  /** The project as the user named it: a path (`group/sub/app`) or a numeric id. */
  project: string;
  projectId: number | null;
  projectPath: string | null;
  projectWebUrl: string | null;
  /** The branch asked for; null means the project's default branch. */
  branch: string | null;
  /** The branch actually cloned. */
  baseBranch: string | null;
  /** The agent profile the run used (`custom`: the user's own command). */
  agent: string;
  /** The run's root filesystem; `host` is the host's own /usr, which has no digest. */
  image: { ref: string; digest: string | null };
  command: string[];
  allowHosts: string[];
  /** Names of the user's secrets the run receives as environment variables; decrypted only when it starts. */
  secrets: string[];
  timeoutMs: number;
  status: RunStatus;
  error: RunError | null;
  exitCode: number | null;
  warnings: Warning[];
  outputs: RunOutputs;
  /** Origins (host:port) the sandbox's proxy let through, and those it refused. */
  egress: { allowed: string[]; refused: string[] };
  /** `git clone --depth` asked for; null for full history. */
  depth: number | null;
  /** `git clone --filter` asked for (`blob:none`); null for none. */
  filter: RunCloneFilter | null;
  /** Whether the workspace came from the repository cache's mirror, and whether that had to be built first; null until the clone. */
  repoCache: RunRepoCache | null;
  /** readyMs: from the request to the agent's start; cloneMs: the clone step (mirror and workspace). Null until known. */
  timings: { readyMs: number | null; cloneMs: number | null };
  credentials: CredentialsMode;
  /** What the broker's policy refused (brokered runs; always empty for direct ones). */
  policy: RunPolicyRecord;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The worker process that took the run (docs/architecture.md, "Processes"); null while queued. */
  worker: string | null;
};

/**
 * Error codes of runs a worker process could not finish: it stopped (SIGTERM) before the run ended, or it was
 * lost (no heartbeat within FORGELINK_WORKER_LOST_AFTER) and another process ended the run.
 */
export const WORKER_STOPPED = 'worker_stopped';
export const WORKER_LOST = 'worker_lost';

/** A canceled run's error: what every step stopped by the cancel throws, and what the run ends with. */
export const RUN_CANCELED: RunError = { code: 'canceled', message: 'The run was canceled.' };

export function runCanceled(): ForgelinkError {
  return new ForgelinkError(RUN_CANCELED.code, RUN_CANCELED.message);
}

/** The statuses of a run a worker has taken and not finished. */
export const IN_FLIGHT_STATUSES: readonly RunStatus[] = ['preparing', 'cloning', 'running', 'collecting'];

export type RunLogEntry = { seq: number; at: string; stream: 'stdout' | 'stderr' | 'system'; text: string };
