import type { Insertable, Selectable, Updateable } from 'kysely';
import type { Run, RunLogEntry } from '../core/index.ts';
import {
  CloneFilterColumn,
  CredentialsColumn,
  EgressJson,
  PolicyJson,
  RepoCacheColumn,
  LogStreamColumn,
  OutputsJson,
  RunErrorJson,
  RunStatusColumn,
  StringsJson,
  WarningsJson,
} from './schema.ts';
import type { RunLogsTable, RunsTable } from './tables.ts';

export type RunPatch = Partial<Omit<Run, 'id' | 'userId' | 'createdAt'>>;

/** Rows are parsed, not trusted, as for connections (rows.ts). */
export function runFromRow(row: Selectable<RunsTable>): Run {
  return {
    id: row.id,
    userId: row.user_id,
    connectionId: row.connection_id,
    project: row.project,
    projectId: row.project_id === null ? null : Number(row.project_id),
    projectPath: row.project_path,
    projectWebUrl: row.project_web_url,
    branch: row.branch,
    baseBranch: row.base_branch,
    command: StringsJson.parse(JSON.parse(row.command)),
    allowHosts: StringsJson.parse(JSON.parse(row.allow_hosts)),
    agent: row.agent,
    image: { ref: row.image_ref, digest: row.image_digest },
    secrets: StringsJson.parse(JSON.parse(row.secrets)),
    timeoutMs: Number(row.timeout_ms),
    status: RunStatusColumn.parse(row.status),
    error: row.error === null ? null : RunErrorJson.parse(JSON.parse(row.error)),
    exitCode: row.exit_code,
    warnings: WarningsJson.parse(JSON.parse(row.warnings)),
    outputs: OutputsJson.parse(JSON.parse(row.outputs)),
    egress: EgressJson.parse(JSON.parse(row.egress)),
    depth: row.clone_depth === null ? null : Number(row.clone_depth),
    filter: row.clone_filter === null ? null : CloneFilterColumn.parse(row.clone_filter),
    repoCache: row.repo_cache === null ? null : RepoCacheColumn.parse(row.repo_cache),
    timings: { readyMs: row.ready_ms === null ? null : Number(row.ready_ms), cloneMs: row.clone_ms === null ? null : Number(row.clone_ms) },
    credentials: CredentialsColumn.parse(row.credentials),
    policy: PolicyJson.parse(JSON.parse(row.policy)),
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    worker: row.worker_id,
  };
}

export function runToRow(run: Run): Insertable<RunsTable> {
  return {
    id: run.id,
    user_id: run.userId,
    connection_id: run.connectionId,
    project: run.project,
    project_id: run.projectId,
    project_path: run.projectPath,
    project_web_url: run.projectWebUrl,
    branch: run.branch,
    base_branch: run.baseBranch,
    command: JSON.stringify(run.command),
    allow_hosts: JSON.stringify(run.allowHosts),
    agent: run.agent,
    image_ref: run.image.ref,
    image_digest: run.image.digest,
    secrets: JSON.stringify(run.secrets),
    timeout_ms: run.timeoutMs,
    status: run.status,
    error: run.error === null ? null : JSON.stringify(run.error),
    exit_code: run.exitCode,
    warnings: JSON.stringify(run.warnings),
    outputs: JSON.stringify(run.outputs),
    egress: JSON.stringify(run.egress),
    clone_depth: run.depth,
    clone_filter: run.filter,
    repo_cache: run.repoCache,
    ready_ms: run.timings.readyMs,
    clone_ms: run.timings.cloneMs,
    credentials: run.credentials,
    policy: JSON.stringify(run.policy),
    created_at: run.createdAt,
    started_at: run.startedAt,
    finished_at: run.finishedAt,
    worker_id: run.worker,
  };
}

/** The columns a patch changes; keys whose value is `undefined` are left alone. */
export function runPatchToRow(patch: RunPatch): Updateable<RunsTable> {
  const row: Updateable<RunsTable> = {};
  if (patch.connectionId !== undefined) row.connection_id = patch.connectionId;
  if (patch.project !== undefined) row.project = patch.project;
  if (patch.projectId !== undefined) row.project_id = patch.projectId;
  if (patch.projectPath !== undefined) row.project_path = patch.projectPath;
  if (patch.projectWebUrl !== undefined) row.project_web_url = patch.projectWebUrl;
  if (patch.branch !== undefined) row.branch = patch.branch;
  if (patch.baseBranch !== undefined) row.base_branch = patch.baseBranch;
  if (patch.command !== undefined) row.command = JSON.stringify(patch.command);
  if (patch.allowHosts !== undefined) row.allow_hosts = JSON.stringify(patch.allowHosts);
  if (patch.agent !== undefined) row.agent = patch.agent;
  if (patch.image !== undefined) {
    row.image_ref = patch.image.ref;
    row.image_digest = patch.image.digest;
  }
  if (patch.secrets !== undefined) row.secrets = JSON.stringify(patch.secrets);
  if (patch.timeoutMs !== undefined) row.timeout_ms = patch.timeoutMs;
  if (patch.status !== undefined) row.status = patch.status;
  if (patch.error !== undefined) row.error = patch.error === null ? null : JSON.stringify(patch.error);
  if (patch.exitCode !== undefined) row.exit_code = patch.exitCode;
  if (patch.warnings !== undefined) row.warnings = JSON.stringify(patch.warnings);
  if (patch.outputs !== undefined) row.outputs = JSON.stringify(patch.outputs);
  if (patch.egress !== undefined) row.egress = JSON.stringify(patch.egress);
  if (patch.depth !== undefined) row.clone_depth = patch.depth;
  if (patch.filter !== undefined) row.clone_filter = patch.filter;
  if (patch.repoCache !== undefined) row.repo_cache = patch.repoCache;
  if (patch.timings !== undefined) {
    row.ready_ms = patch.timings.readyMs;
    row.clone_ms = patch.timings.cloneMs;
  }
  if (patch.credentials !== undefined) row.credentials = patch.credentials;
  if (patch.policy !== undefined) row.policy = JSON.stringify(patch.policy);
  if (patch.startedAt !== undefined) row.started_at = patch.startedAt;
  if (patch.finishedAt !== undefined) row.finished_at = patch.finishedAt;
  if (patch.worker !== undefined) row.worker_id = patch.worker;
  return row;
}

export function logEntryFromRow(row: Selectable<RunLogsTable>): RunLogEntry {
  return { seq: Number(row.seq), at: row.at, stream: LogStreamColumn.parse(row.stream), text: row.text };
}
