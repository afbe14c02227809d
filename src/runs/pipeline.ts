import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  auditEntry,
  type AuditStore,
  ForgelinkError,
  formatBytes,
  diffBranches,
  mergeOutputs,
  originOfBaseUrl,
  parseLsRemote,
  parsePushReplies,
  quoteCommandLine,
  tokenState,
  type Clock,
  type Connection,
  type ConnectionStore,
  type GitLabClient,
  type GitLabClientFactory,
  type OutboundPolicy,
  type Run,
  type RunError,
  type RunOutputs,
  type RunStatus,
  type RunStore,
  type SandboxDriver,
  type SandboxExit,
  type SandboxSession,
  type TokenProvider,
  type Warning,
  WORKER_STOPPED,
} from '../core/index.ts';
import { auditedTokens, createConnectionClient } from '../tokens/index.ts';
import { DEFAULT_LIMITS, removeTree } from '../sandbox/index.ts';
import { CA_BUNDLE_PATH, GIT_SYSTEM_CONFIG_PATH, agentEnv, caBundle, gitIdentityConfig } from './agent-env.ts';
import { prepareProject, preflightFailure, type PreparedProject } from './preflight.ts';
import { createClaudeStreamFormatter } from './claude-stream.ts';
import { createRunLog, type RunLog } from './run-log.ts';
import type { RunSettings } from './settings.ts';

/** A user's named secrets as runs need them (secrets/service.ts). */
export type RunSecrets = {
  /** Throws InputError naming `field` (default `secrets`) when the user has no secret of one of these names. */
  assertExist(userId: string, names: readonly string[], field?: string): Promise<void>;
  /** Decrypts the run's secrets (audited, last use updated); throws when one is gone or cannot be opened. */
  openForRun(run: Pick<Run, 'id' | 'userId' | 'secrets'>): Promise<{ name: string; value: string }[]>;
};

export type PipelineDeps = {
  /** The user's named secrets a run asks for (`secrets`), given to its sandbox as environment variables. */
  secrets: RunSecrets;
  runs: RunStore;
  connections: ConnectionStore;
  /** The connection's token, refreshed when it is an OAuth token about to expire or refused. */
  tokens: TokenProvider;
  /** The audit trail: the run's token decryptions, its start and its end. */
  audit?: AuditStore;
  gitlab: GitLabClientFactory;
  sandbox: SandboxDriver;
  clock: Clock;
  settings: RunSettings;
  outboundPolicy: OutboundPolicy;
  /** Reports a failure inside forgelink (a bug or a host problem, not the agent's or GitLab's) to the server log. */
  onError?: (error: unknown, runId: string) => void;
};

const LS_REMOTE_TIMEOUT_MS = 120_000;
const CLONE_TIMEOUT_MS = 15 * 60_000;
/** GitLab's clock and ours may disagree a little; merge requests and issues are looked up from this much earlier. */
const CLOCK_SKEW_MS = 5_000;

/** The directory holding everything of one run on the host. */
export function runDir(settings: RunSettings, runId: string): string {
  return path.join(settings.workDir, runId);
}

const API_SCOPES = ['api', 'read_api'];

/**
 * The abort reason a worker gives when it stops (SIGTERM) and its drain period ends before the run: such a run ends
 * `failed` with code `worker_stopped`, not `canceled`, which means a person canceled it.
 */
export const SHUTDOWN = 'forgelink-shutdown';

/** How a run whose signal fired ends: canceled by a person, or stopped with its worker. */
function stoppedOutcome(signal: AbortSignal): { status: RunStatus; error: RunError } {
  if (signal.reason === SHUTDOWN) {
    return {
      status: 'failed',
      error: { code: WORKER_STOPPED, message: 'forgelink was shut down while this run was in progress (its worker stopped); it was stopped.' },
    };
  }
  return { status: 'canceled', error: { code: 'canceled', message: 'The run was canceled.' } };
}

/**
 * Executes one queued run through the pipeline in docs/architecture.md: preparing → cloning → running → collecting →
 * a final status. State is persisted at every step; the token is decrypted here, lives in memory only,
 * and is scrubbed from everything the run logs. Never throws: every failure ends as a failed run.
 */
export async function executeRun(deps: PipelineDeps, queued: Run, signal: AbortSignal): Promise<Run> {
  const { runs, clock } = deps;
  let run = queued;
  const auditTokens = auditedTokens(deps.tokens, deps.audit, clock, { actor: run.userId, reason: 'run', runId: run.id });
  await deps.audit?.record(
    auditEntry(clock.now(), {
      ownerId: run.userId,
      actor: run.userId,
      action: 'run.started',
      connectionId: run.connectionId,
      runId: run.id,
      details: { project: run.project, branch: run.branch, command: run.command, secrets: run.secrets },
    }),
  );
  // The token and the run's secrets are decrypted first so the log's scrubber knows them before anything could print them.
  const opened = await openConnection({ ...deps, tokens: auditTokens }, run).then(
    async (value) => ({ ok: true as const, ...value, secrets: await deps.secrets.openForRun(run) }),
    (failure: unknown) => ({ ok: false as const, failure }),
  );
  const log: RunLog = createRunLog({
    runId: run.id,
    store: runs,
    secrets: opened.ok ? [opened.token, ...opened.secrets.map((secret) => secret.value)] : [],
    now: () => clock.now(),
  });
  // Every token this run obtains later (a refreshed OAuth token) is redacted from its log before anyone sees it.
  const tokens = scrubbingTokens(auditTokens, log);
  let session: SandboxSession | null = null;
  let client: GitLabClient | null = null;
  const update = async (patch: Partial<Run>) => {
    run = await runs.updateRun(run.id, patch);
  };
  const step = async (status: RunStatus, line: string, patch: Partial<Run> = {}) => {
    if (signal.aborted) throw new ForgelinkError('canceled', 'The run was canceled.');
    log.system(line);
    await update({ status, ...patch });
  };

  const startedAt = clock.now();
  let status: RunStatus = 'failed';
  let error: RunError | null = null;
  let exitCode: number | null = null;
  let outputs: RunOutputs = run.outputs;
  const warnings: Warning[] = [];
  let agentStarted = false;

  try {
    await step('preparing', `Preparing run ${run.id}: ${run.project}${run.branch ? ` (${run.branch})` : ''}`, {
      startedAt: startedAt.toISOString(),
    });
    if (!opened.ok) throw opened.failure;
    const { connection, token } = opened;
    client = createConnectionClient({ gitlab: deps.gitlab, tokens }, connection);
    const canUseApi = connection.scopes.some((scope) => API_SCOPES.includes(scope));

    let prepared: PreparedProject;
    let asked: 'token' | 'resource' = 'token';
    try {
      if (connection.kind === 'pat') await assertTokenUsable(client);
      asked = 'resource';
      prepared = await prepareProject({ client, connection, project: run.project, branch: run.branch, canUseApi });
    } catch (failure) {
      const state = tokenState({ kind: 'failed', error: failure, asked });
      if (state.error !== null && state.status !== 'unchanged') {
        await deps.connections.updateConnection(run.userId, connection.id, {
          status: state.status,
          statusReason: state.error.message,
          checkedAt: clock.now().toISOString(),
        });
      }
      throw preflightFailure(failure, connection, run.project);
    }
    warnings.push(...prepared.warnings);
    for (const warning of prepared.warnings) log.system(`Warning: ${warning.message}`);
    if (!canUseApi) log.system('The token cannot use the API: project access and branch protection are checked by git only.');
    await update({
      projectId: prepared.projectId,
      projectPath: prepared.projectPath,
      projectWebUrl: prepared.projectWebUrl,
      warnings,
    });

    const workspaceDir = path.join(runDir(deps.settings, run.id), 'workspace');
    await mkdir(workspaceDir, { recursive: true, mode: 0o700 });
    const files: Record<string, string> = {
      [GIT_SYSTEM_CONFIG_PATH]: gitIdentityConfig(connection.account, connection.host),
    };
    if (connection.caPem !== null) files[CA_BUNDLE_PATH] = caBundle(connection.caPem);
    const profile = deps.settings.agents.find((candidate) => candidate.name === run.agent);
    if (profile === undefined) {
      throw new ForgelinkError('unknown_agent', `The agent profile "${run.agent}" no longer exists on this server.`);
    }
    // The profile's model API joins the allowlist as the GitLab host does.
    const allowlist = [...new Set([originOfBaseUrl(connection.baseUrl), ...profile.hosts, ...deps.settings.extraHosts, ...run.allowHosts])];
    const caps = runCaps(deps.settings);
    session = await deps.sandbox.create({
      runId: run.id,
      workspaceDir,
      allowlist,
      outboundPolicy: deps.outboundPolicy,
      files,
      limits: { memoryBytes: caps.memoryBytes, diskBytes: caps.diskBytes },
      ...(connection.kind === 'oauth' ? { internalToken: () => tokens.currentToken(connection) } : {}),
    });
    const env = {
      // The profile's defaults first, then the user's secrets (their names are checked never to be one forgelink
      // sets, core/secrets.ts); forgelink's own variables win regardless.
      ...profile.env,
      ...Object.fromEntries(opened.secrets.map((secret) => [secret.name, secret.value])),
      ...agentEnv({ runId: run.id, baseUrl: connection.baseUrl, token, kind: connection.kind, hasCa: connection.caPem !== null }),
    };
    if (opened.secrets.length > 0) log.system(`Secrets given as environment variables: ${opened.secrets.map((secret) => secret.name).join(', ')}`);
    log.system(`Sandbox ready; network allowlist: ${allowlist.join(', ')}`);
    for (const notice of session.notices ?? []) log.system(notice);

    const before = await lsRemote(session, env, prepared.cloneUrl, log, signal, caps);
    const baseBranch = prepared.baseBranch ?? before.head;
    if (baseBranch === null) throw new ForgelinkError('empty_repository', `${prepared.projectPath} has no commits yet, so there is nothing to clone.`);
    if (!before.refs.has(baseBranch)) {
      throw new ForgelinkError('branch_not_found', `Branch ${baseBranch} does not exist in ${prepared.projectPath}.`);
    }

    await step('cloning', `Cloning ${prepared.projectPath} (${baseBranch}) from ${prepared.cloneUrl}`, { baseBranch });
    const clone = await session.exec({
      command: ['git', 'clone', '--quiet', '--branch', baseBranch, '--', prepared.cloneUrl, '/workspace'],
      env,
      cwd: '/',
      timeoutMs: CLONE_TIMEOUT_MS,
      signal,
      onOutput: (chunk, stream) => log.output(chunk, stream),
    });
    throwIfStopped(clone, signal, 'git clone', caps);
    if (clone.exitCode !== 0) throw new ForgelinkError('clone_failed', `git clone failed with exit code ${clone.exitCode}; the log shows git's message.`);

    const remaining = run.timeoutMs - (clock.now().getTime() - startedAt.getTime());
    agentStarted = true;
    await step('running', `Running${run.agent === 'custom' ? '' : ` ${run.agent}`}: ${quoteCommandLine(run.command)}`);
    const formatter = profile.output === 'claude-stream-json' ? createClaudeStreamFormatter() : null;
    const agent = await session.exec({
      command: run.command,
      env,
      timeoutMs: Math.max(remaining, 1_000),
      signal,
      onOutput: (chunk, stream) => log.output(formatter !== null && stream === 'stdout' ? formatter.push(chunk) : chunk, stream),
    });
    if (formatter !== null) log.output(formatter.flush(), 'stdout');
    exitCode = agent.exitCode;
    if (agent.canceled || signal.aborted) {
      ({ status, error } = stoppedOutcome(signal));
    } else if (agent.timedOut) {
      status = 'timed_out';
      error = { code: 'timed_out', message: `The agent did not finish within ${Math.round(run.timeoutMs / 1000)} seconds and was stopped.` };
    } else if (agent.limit !== undefined) {
      error = limitError(agent.limit, 'The agent', caps);
    } else if (agent.exitCode === 0) {
      status = 'succeeded';
    } else if (agent.exitCode === 127) {
      error = {
        code: 'command_not_found',
        message: commandNotFound(run.command[0] ?? '', env.PATH ?? ''),
      };
    } else {
      error = { code: 'agent_failed', message: `The agent exited with ${agent.signal ? `signal ${agent.signal}` : `code ${agent.exitCode}`}.` };
    }
    log.system(`Agent finished: ${status === 'succeeded' ? 'success' : error?.message}`);

    // Whatever the agent's end, what it pushed is real: collect it (without the cancel signal).
    await update({ status: 'collecting' });
    log.system('Collecting outputs');
    const after = await lsRemote(session, env, prepared.cloneUrl, log, AbortSignal.timeout(LS_REMOTE_TIMEOUT_MS), caps);
    outputs = await collectOutputs({
      client,
      canUseApi,
      accountId: connection.account?.id ?? null,
      projectId: prepared.projectId,
      projectWebUrl: prepared.projectWebUrl,
      before: before.refs,
      after: after.refs,
      transcript: log.transcript(),
      since: new Date(startedAt.getTime() - CLOCK_SKEW_MS),
      log,
    });
  } catch (failure) {
    if (signal.aborted) {
      ({ status, error } = stoppedOutcome(signal));
    } else if (failure instanceof ForgelinkError) {
      status = failure.code === 'timed_out' ? 'timed_out' : 'failed';
      error = { code: failure.code, message: failure.message };
    } else {
      status = 'failed';
      error = { code: 'internal', message: 'forgelink failed while running this run; the server log has details.' };
      log.system(`Internal error: ${failure instanceof Error ? failure.message : String(failure)}`);
      deps.onError?.(failure, run.id);
    }
    // Before the agent started, the closing line below is the one that says why.
    if (agentStarted) log.system(`Run ${status}: ${error.message}`);
  } finally {
    await session?.destroy().catch(() => {});
    await client?.close().catch(() => {});
    await removeTree(runDir(deps.settings, run.id)).catch(() => {});
  }

  log.system(agentStarted || error === null ? summary(status, outputs) : `Run ${status} before the agent started: ${error.message}`);
  await log.close();
  await update({
    status,
    error,
    exitCode,
    outputs,
    warnings,
    egress: session?.egress() ?? run.egress,
    finishedAt: clock.now().toISOString(),
  });
  await deps.audit?.record(
    auditEntry(clock.now(), {
      ownerId: run.userId,
      actor: run.userId,
      action: 'run.finished',
      connectionId: run.connectionId,
      runId: run.id,
      details: { status, error: error?.code ?? null, projectPath: run.projectPath, outputs, egress: run.egress },
    }),
  );
  return run;
}

/** The run's connection and its current token (an OAuth token is refreshed first when it is about to expire). */
async function openConnection(deps: PipelineDeps, run: Run): Promise<{ connection: Connection; token: string }> {
  const connection = await deps.connections.getConnection(run.userId, run.connectionId);
  if (connection === null) {
    throw new ForgelinkError('connection_not_found', `Connection ${run.connectionId} does not exist (it may have been disconnected).`);
  }
  return { connection, token: await deps.tokens.currentToken(connection) };
}

/** The provider, adding each token it hands out to the run log's secrets first. */
function scrubbingTokens(provider: TokenProvider, log: RunLog): TokenProvider {
  const seen = (token: string) => {
    log.addSecret(token);
    return token;
  };
  return {
    currentToken: async (connection) => seen(await provider.currentToken(connection)),
    refresh: async (connection, stale, error) => seen(await provider.refresh(connection, stale, error)),
    withToken: (connection, use) => provider.withToken(connection, (token) => use(seen(token))),
  };
}

/** A personal access token's self-information, judged as a check judges it: a token that is not active fails here. */
async function assertTokenUsable(client: GitLabClient): Promise<void> {
  const info = await client.inspectToken();
  const state = tokenState(info === null ? { kind: 'not_personal' } : { kind: 'self', ...info });
  if (state.error !== null) throw state.error;
}

type RunCaps = { memoryBytes: number; diskBytes: number };

function runCaps(settings: RunSettings): RunCaps {
  return { memoryBytes: settings.memoryMaxBytes ?? DEFAULT_LIMITS.memoryBytes, diskBytes: settings.diskMaxBytes ?? DEFAULT_LIMITS.diskBytes };
}

/** The run's error when `who` (the agent, git clone…) failed because the run hit a cap. */
function limitError(limit: NonNullable<SandboxExit['limit']>, who: string, caps: RunCaps): RunError {
  if (limit === 'memory') {
    return {
      code: 'memory_limit',
      message: `${who} ran out of memory: a process was killed for taking the run past its memory cap of ${formatBytes(caps.memoryBytes)} (FORGELINK_RUN_MEMORY_MAX).`,
    };
  }
  return {
    code: 'disk_limit',
    message: `${who} was stopped for filling the workspace and home directory past the run's disk cap of ${formatBytes(caps.diskBytes)} (FORGELINK_RUN_DISK_MAX).`,
  };
}

function throwIfStopped(exit: SandboxExit, signal: AbortSignal, what: string, caps: RunCaps): void {
  if (exit.canceled || signal.aborted) throw new ForgelinkError('canceled', 'The run was canceled.');
  if (exit.timedOut) throw new ForgelinkError('timed_out', `${what} did not finish in time.`);
  if (exit.limit !== undefined) {
    const error = limitError(exit.limit, what, caps);
    throw new ForgelinkError(error.code, error.message);
  }
}

/** `git ls-remote --symref`: every branch with its commit, and the branch HEAD points to. */
async function lsRemote(
  session: SandboxSession,
  env: Record<string, string>,
  cloneUrl: string,
  log: RunLog,
  signal: AbortSignal,
  caps: RunCaps,
): Promise<{ refs: Map<string, string>; head: string | null }> {
  let stdout = '';
  const exit = await session.exec({
    command: ['git', 'ls-remote', '--symref', '--', cloneUrl, 'HEAD', 'refs/heads/*'],
    env,
    cwd: '/',
    timeoutMs: LS_REMOTE_TIMEOUT_MS,
    signal,
    onOutput: (chunk, stream) => {
      if (stream === 'stdout') stdout += chunk;
      else log.output(chunk, stream);
    },
  });
  throwIfStopped(exit, signal, 'git ls-remote', caps);
  if (exit.exitCode !== 0) {
    throw new ForgelinkError(
      'repository_unreachable',
      `git could not list ${cloneUrl} (exit code ${exit.exitCode}): the log shows git's message. Check the project path and that the token may read the repository.`,
    );
  }
  const head = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(stdout)?.[1] ?? null;
  return { refs: parseLsRemote(stdout), head };
}

async function collectOutputs(input: {
  client: GitLabClient;
  canUseApi: boolean;
  accountId: number | null;
  projectId: number | null;
  projectWebUrl: string;
  before: Map<string, string>;
  after: Map<string, string>;
  transcript: string;
  since: Date;
  log: RunLog;
}): Promise<RunOutputs> {
  const branches = diffBranches(input.before, input.after);
  const pushMergeRequests = parsePushReplies(input.transcript).filter((reply) => reply.kind === 'view');
  let apiMergeRequests: Awaited<ReturnType<GitLabClient['mergeRequests']>> = [];
  let issues: Awaited<ReturnType<GitLabClient['issues']>> = [];
  if (input.canUseApi && input.accountId !== null && input.projectId !== null) {
    const filter = { authorId: input.accountId, createdAfter: input.since.toISOString() };
    try {
      apiMergeRequests = await input.client.mergeRequests(input.projectId, filter);
      issues = await input.client.issues(input.projectId, filter);
    } catch (error) {
      input.log.system(`Could not list merge requests and issues: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return mergeOutputs({ branches, apiMergeRequests, pushMergeRequests, issues, projectWebUrl: input.projectWebUrl });
}

/** What to do when the agent's command is not in the sandbox, which sees the host's /usr and the mounted directories only. */
function commandNotFound(name: string, pathVariable: string): string {
  const where = name.includes('/')
    ? `mount its directory into every sandbox with FORGELINK_SANDBOX_MOUNTS (read-only, at the same path)`
    : `install it on the host under /usr, or mount the directory that holds it with FORGELINK_SANDBOX_MOUNTS and give its full path`;
  return `The agent command "${name}" was not found in the sandbox (PATH=${pathVariable}). The sandbox sees the host's /usr and the directories in FORGELINK_SANDBOX_MOUNTS only: ${where}.`;
}

function summary(status: RunStatus, outputs: RunOutputs): string {
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  return `Run ${status}: ${count(outputs.branches.length, 'branch', 'branches')}, ${count(outputs.mergeRequests.length, 'merge request', 'merge requests')}, ${count(outputs.issues.length, 'issue', 'issues')}`;
}
