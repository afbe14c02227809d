import { lstat, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
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
  type AgentProfile,
  type PolicyRefusal,
  HOST_IMAGE,
  refusalReason,
  WORKER_STOPPED,
  RUN_CANCELED,
  runCanceled,
} from '../core/index.ts';
import { auditedTokens, createConnectionClient } from '../tokens/index.ts';
import { createdByWrite, runGuard, startRunBroker, type BrokerRecord, type RunBroker, type RunPolicy } from '../broker/index.ts';
import { SANDBOX_DEFAULT_PATH } from '../sandbox/index.ts';
import { DEFAULT_LIMITS, removeTree } from '../sandbox/index.ts';
import { CA_BUNDLE_PATH, GIT_SYSTEM_CONFIG_PATH, SYSTEM_CA_BUNDLE_PATH, agentEnv, caBundle, gitIdentityConfig } from './agent-env.ts';
import { prepareProject, preflightFailure, type PreparedProject } from './preflight.ts';
import { createClaudeStreamFormatter } from './claude-stream.ts';
import { createRunLog, type RunLog } from './run-log.ts';
import { GitExitError, gitlabGit, type GitLabGit } from './gitlab-git.ts';
import type { RunSettings } from './settings.ts';
import {
  MIRROR_IN_SANDBOX,
  MIRROR_MOUNT,
  MIRROR_REFSPECS,
  markUsed,
  openMirror,
  pruneMirrors,
  readableDuringUpdate,
  updateMirror,
  usableMirror,
  type HeldLock,
  type Mirror,
  type MirrorFetch,
  type MirrorOf,
  type MirrorUpdate,
} from './repo-cache.ts';

/** A user's named secrets as runs need them (secrets/service.ts). */
export type RunSecrets = {
  /** Throws InputError naming `field` (default `secrets`) when the user has no secret of one of these names. */
  assertExist(userId: string, names: readonly string[], field?: string): Promise<void>;
  /** Decrypts the run's secrets (audited, last use updated); throws when one is gone or cannot be opened. */
  openForRun(run: Pick<Run, 'id' | 'userId' | 'secrets'>): Promise<{ name: string; value: string; hosts: string[] }[]>;
};

/** Run images (images/store.ts): a reference made ready to bind as a sandbox's root. */
export type RunImages = {
  /** Throws NotFoundError (field `image`) when the image is neither pulled nor at its path. */
  check(ref: string): Promise<void>;
  /** Pulls on first use and unpacks once per digest; null for `host`. `progress` gets lines for the run log. */
  ready(ref: string, progress: (line: string) => void): Promise<{ digest: string; rootfs: string } | null>;
};

export type PipelineDeps = {
  /** Run images; without it only `host` runs (the host's own /usr). */
  images?: RunImages;
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
  /** Told of each run this process executed once it has ended, with how long it ran (the run duration metric). */
  onFinished?: (run: Run, seconds: number) => void;
};

const LS_REMOTE_TIMEOUT_MS = 120_000;
const CLONE_TIMEOUT_MS = 15 * 60_000;
/**
 * GitLab's clock and ours may disagree a little; merge requests and issues are looked up from this much earlier. The
 * window alone does not tell this run's objects from another run's of the same account (collectOutputs narrows it).
 */
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
  return { status: 'canceled', error: { ...RUN_CANCELED } };
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
    if (signal.aborted) throw runCanceled();
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
  let mirror: { mirror: Mirror; use: HeldLock; of: MirrorOf } | null = null;
  /** The mirror's update when it started before the sandbox was made (it runs on the host meanwhile). */
  let earlyUpdate: Promise<MirrorUpdate> | null = null;
  /** Whether that update is this run's own fetch (not a wait for another run's): then the workspace is cloned meanwhile. */
  let fetchingEarly = false;
  /** Stops that update when the run ends before making its workspace (a failure while the sandbox was made). */
  const earlyStop = new AbortController();
  let runBroker: RunBroker | null = null;
  const brokerRecords = recordBrokerDecisions(deps, run, log);

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
    const profile = deps.settings.agents.find((candidate) => candidate.name === run.agent);
    if (profile === undefined) {
      throw new ForgelinkError('unknown_agent', `The agent profile "${run.agent}" no longer exists on this server.`);
    }
    // The profile's model API joins the allowlist as the GitLab host does.
    const allowlist = [...new Set([originOfBaseUrl(connection.baseUrl), ...profile.hosts, ...deps.settings.extraHosts, ...run.allowHosts])];
    const caps = runCaps(deps.settings);
    const cache = deps.settings.repoCache;
    // forgelink's own git against GitLab runs on the host (gitlab-git.ts) when forgelink reaches GitLab directly;
    // through the operator's upstream proxy it runs in the run's sandbox, whose proxy tunnels through it.
    const hostGit: GitLabGit | null = deps.outboundPolicy.upstreamProxy
      ? null
      : await gitlabGit({
          cloneUrl: prepared.cloneUrl,
          baseUrl: connection.baseUrl,
          caPem: connection.caPem,
          policy: deps.outboundPolicy,
          token: () => tokens.currentToken(connection),
          dir: runDir(deps.settings, run.id),
        });
    // With the API's word on the project, its default branch and the branch asked for, a full clone through the
    // repository cache asks GitLab's git once — the fetch into the mirror — and takes its "before" from the workspace.
    const listFirst = cache?.enabled !== true || run.depth !== null || run.filter !== null || run.image.ref !== HOST_IMAGE || prepared.defaultBranch === null;
    if (cache?.enabled === true) {
      // Only now, with the token's access to the project confirmed, is the project's mirror touched.
      const of: MirrorOf = { baseUrl: connection.baseUrl, projectId: prepared.projectId, projectPath: prepared.projectPath };
      mirror = { ...(await openMirror(cache.dir, of, signal)), of };
      // Fetched on the host, the mirror is brought up to date while the sandbox is being made.
      if (hostGit !== null && !listFirst) {
        // Settles once the update's git is under way (or the update is over).
        let underway = () => {};
        const gitUnderway = new Promise<void>((resolve) => (underway = resolve));
        const updateSignal = AbortSignal.any([signal, earlyStop.signal]);
        earlyUpdate = updateMirror({
          onUnderway: (how) => {
            fetchingEarly = how === 'fetching';
            underway();
          },
          mirror: mirror.mirror,
          of,
          expected: null,
          since: new Date(run.createdAt),
          head: prepared.defaultBranch,
          fetch: hostFetch(hostGit, log, updateSignal),
          log: (line) => log.system(line),
          now: () => clock.now(),
          signal: updateSignal,
        });
        // Awaited when the workspace is made (or when the run ends first); never an unhandled rejection meanwhile.
        let failed = false;
        earlyUpdate.then(underway, () => {
          failed = true;
          underway();
        });
        // This process's part of the update (locks, the mirror's check) goes first: the sandbox, which takes the
        // same thread for a while, is made while git fetches, which is what a warm run waits for.
        await gitUnderway;
        if (signal.aborted) throw runCanceled();
        // Failed before git was under way: its error is the run's, with no sandbox made for nothing.
        if (failed) await earlyUpdate;
      }
    }
    // The run policy (docs/security.md, "Run policy"); the branches that existed before the run join it once git listed them.
    let runPolicy: RunPolicy = {
      projectId: prepared.projectId ?? -1,
      projectPath: prepared.projectPath,
      defaultBranch: prepared.defaultBranch ?? '',
      protectedBranches: prepared.protectedBranches,
      existingBranches: new Set<string>(),
      ...(run.branch === null ? {} : { allowedBranch: run.branch }),
      // The options fixed when the run was started (operator ∧ connection ∧ run); the operator's for runs from before.
      ...(run.policy.options ?? deps.settings.policy),
      basePath: new URL(connection.baseUrl).pathname,
    };
    // Brokered (docs/security.md, "Credential broker"): the sandbox gets surrogates; the run's proxy swaps in the real
    // token and the secrets bound to hosts, and applies the run's policy to what goes to GitLab.
    if (run.credentials === 'brokered') {
      runBroker = await startRunBroker({
        runId: run.id,
        timeoutMs: run.timeoutMs,
        gitlab: { origin: originOfBaseUrl(connection.baseUrl), caPem: connection.caPem, oauth: connection.kind === 'oauth', token: () => tokens.currentToken(connection) },
        secrets: opened.secrets.map((secret) => ({ ...secret, hosts: secretHosts(secret, profile) })),
        guard: runGuard(
          () => runPolicy,
          (oldId, newId) => (session === null ? Promise.resolve(undefined) : isAncestorInWorkspace(session, oldId, newId)),
        ),
        onRecord: (record) => brokerRecords.note(record),
      });
    }
    const files: Record<string, string> = {
      [GIT_SYSTEM_CONFIG_PATH]: gitIdentityConfig(connection.account, connection.host),
    };
    const trusted = [connection.caPem, runBroker?.caPem ?? null].filter((pem): pem is string => pem !== null);
    if (trusted.length > 0) files[CA_BUNDLE_PATH] = caBundle(trusted);
    const image = await readyImage(deps, run.image.ref, log);
    if (image !== null) await update({ image: { ref: run.image.ref, digest: image.digest } });
    // Tools that read only the system bundle (and none of the variables agentEnv sets) trust the broker too — where
    // the run's system has that bundle to stand in for (an image without one relies on the variables).
    if (runBroker !== null && (image === null || (await lstat(path.join(image.rootfs, SYSTEM_CA_BUNDLE_PATH)).catch(() => null))?.isFile())) {
      files[SYSTEM_CA_BUNDLE_PATH] = caBundle(trusted);
    }
    session = await deps.sandbox.create({
      ...(image === null ? {} : { rootfs: image.rootfs }),
      runId: run.id,
      workspaceDir,
      allowlist,
      outboundPolicy: deps.outboundPolicy,
      files,
      limits: { memoryBytes: caps.memoryBytes, diskBytes: caps.diskBytes, cpuMillicores: deps.settings.cpuMillicores ?? null },
      mounts: mirror === null ? [] : [{ source: mirror.mirror.dir, dest: MIRROR_MOUNT }],
      // A brokered sandbox never sees a real token, not even a refreshed one: the broker injects it.
      ...(connection.kind === 'oauth' && runBroker === null ? { internalToken: () => tokens.currentToken(connection) } : {}),
      ...(runBroker === null ? {} : { broker: runBroker.broker }),
    });
    const surrogates = runBroker?.surrogates ?? {};
    const env = {
      // The profile's defaults first, then the user's secrets (their names are checked never to be one forgelink
      // sets, core/secrets.ts); forgelink's own variables win regardless.
      ...profile.env,
      ...Object.fromEntries(opened.secrets.map((secret) => [secret.name, surrogates[secret.name] ?? secret.value])),
      ...agentEnv({
        runId: run.id,
        baseUrl: connection.baseUrl,
        token: surrogates.GITLAB_TOKEN ?? token,
        // The surrogate never changes during the run (the broker puts in the current token), so git needs no refresh.
        kind: runBroker === null ? connection.kind : 'pat',
        hasCa: trusted.length > 0,
      }),
    };
    if (opened.secrets.length > 0) log.system(`Secrets given as environment variables: ${opened.secrets.map((secret) => secret.name).join(', ')}`);
    if (runBroker !== null) {
      const unbound = opened.secrets.filter((secret) => surrogates[secret.name] === undefined).map((secret) => secret.name);
      log.system(
        `Credentials brokered: the sandbox holds surrogates for ${Object.keys(surrogates).join(', ')}; the run's proxy swaps in the real values toward ${runBroker.origins.join(', ')} only.`,
      );
      if (unbound.length > 0) {
        log.system(`Given as they are (bound to no host, so not brokered): ${unbound.join(', ')}. Bind a secret with forgelink secrets set <NAME> --host <host> to broker it.`);
      }
    } else {
      log.system('Credentials direct: the sandbox holds the real GitLab token.');
    }
    log.system(`Sandbox ready; network allowlist: ${allowlist.join(', ')}`);
    for (const notice of session.notices ?? []) log.system(notice);

    const listed = listFirst ? await lsRemote(session, env, prepared.cloneUrl, log, signal, caps) : null;
    const baseBranch = prepared.baseBranch ?? listed?.head ?? null;
    if (baseBranch === null) throw new ForgelinkError('empty_repository', `${prepared.projectPath} has no commits yet, so there is nothing to clone.`);
    if (listed !== null && !listed.refs.has(baseBranch)) {
      throw branchNotFound(baseBranch, prepared.projectPath);
    }

    const shape = [run.depth === null ? '' : `--depth ${run.depth}`, run.filter === null ? '' : `--filter=${run.filter}`].filter((part) => part !== '').join(' ');
    await step('cloning', `Cloning ${prepared.projectPath} (${baseBranch}${shape === '' ? '' : `, ${shape}`}) from ${prepared.cloneUrl}`, { baseBranch });
    const cloneStarted = clock.now().getTime();
    const { repoCache, branches } = await cloneWorkspace({
      session: session as SandboxSession,
      env,
      run,
      cloneUrl: prepared.cloneUrl,
      baseBranch,
      expected: listed?.all ?? null,
      since: new Date(run.createdAt),
      head: listed?.head ?? prepared.defaultBranch,
      mirror,
      hostGit,
      earlyUpdate,
      fetchingEarly,
      workspaceDir,
      log,
      now: () => clock.now(),
      signal,
      caps,
    });
    // From the mirror, the workspace shows GitLab as of the mirror's last fetch (a moment after the listing above, when
    // another run fetched in between): the run's outputs are what changed from there.
    const before = branches ?? listed?.refs;
    if (before === undefined) throw new Error('a workspace made without a listing has its branches');
    // The branches that existed before the run join the run policy before the agent starts (docs/security.md, "Run policy").
    runPolicy = { ...runPolicy, defaultBranch: prepared.defaultBranch ?? listed?.head ?? '', existingBranches: new Set(before.keys()) };
    const agentAt = clock.now().getTime();
    const timings = { readyMs: Math.max(0, agentAt - Date.parse(run.createdAt)), cloneMs: agentAt - cloneStarted };
    log.system(`Ready in ${(timings.readyMs / 1000).toFixed(1)} s (clone ${(timings.cloneMs / 1000).toFixed(1)} s, repository cache ${repoCache}).`);
    await update({ repoCache, timings });

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
    // Brokered, and with every origin the sandbox may reach brokered (no tunnel it could push through unseen), every
    // request the sandbox sent passed the run's broker: sealed now (the agent has ended), it tells whether any write
    // went upstream. None: the run changed nothing at GitLab and there is nothing to collect. (The listing runs on the
    // host then; through an upstream proxy it needs the sandbox's proxy, so the broker is not sealed.)
    const everyOriginBrokered = runBroker !== null && allowlist.every((origin) => runBroker?.origins.includes(origin) === true);
    if (runBroker !== null && hostGit !== null && everyOriginBrokered && runBroker.broker.seal().writes === 0) {
      log.system('Collecting outputs: none; the agent sent GitLab no write (the run\'s proxy saw every request).');
    } else {
      log.system('Collecting outputs');
      const after = await lsRemote(session, env, prepared.cloneUrl, log, AbortSignal.timeout(LS_REMOTE_TIMEOUT_MS), caps, hostGit);
      outputs = await collectOutputs({
        client,
        canUseApi,
        accountId: connection.account?.id ?? null,
        projectId: prepared.projectId,
        projectWebUrl: prepared.projectWebUrl,
        before,
        after: after.refs,
        transcript: log.transcript(),
        since: new Date(startedAt.getTime() - CLOCK_SKEW_MS),
        // Brokered, every write the agent sent GitLab went through the run's proxy, which kept what each one created.
        created: runBroker === null ? null : brokerCreated(brokerRecords.allowedWrites, { id: prepared.projectId, path: prepared.projectPath, basePath: runPolicy.basePath ?? '' }),
        log,
      });
    }
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
    // An update begun before the sandbox and still under way (the run failed first) is stopped: git's fetch leaves the
    // mirror as it was, a build is removed. It ends before the mirror is let go, below.
    earlyStop.abort();
    await session?.destroy().catch(() => {});
    await client?.close().catch(() => {});
    await removeTree(runDir(deps.settings, run.id)).catch(() => {});
    if (mirror !== null) {
      await earlyUpdate?.catch(() => {});
      await mirror.use.release().catch(() => {});
      // The cache back under FORGELINK_REPO_CACHE_MAX: least recently used mirrors first, never one in use.
      const cache = deps.settings.repoCache;
      if (cache !== undefined) {
        await pruneMirrors(cache.dir, cache.maxBytes, mirror.mirror.key).then(
          ({ removed }) => {
            for (const gone of removed) log.system(`Repository cache: removed the mirror of ${gone.projectPath ?? gone.key} (${formatBytes(gone.sizeBytes)}), least recently used, to stay under ${formatBytes(cache.maxBytes)}.`);
          },
          (failure: unknown) => deps.onError?.(failure, run.id),
        );
      }
    }
  }

  log.system(agentStarted || error === null ? summary(status, outputs) : `Run ${status} before the agent started: ${error.message}`);
  await brokerRecords.settled();
  await log.close();
  await update({
    status,
    error,
    exitCode,
    outputs,
    warnings,
    egress: session?.egress() ?? run.egress,
    policy: { refused: brokerRecords.refused, options: run.policy.options },
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
  deps.onFinished?.(run, (clock.now().getTime() - startedAt.getTime()) / 1000);
  return run;
}

/**
 * The origins a secret's real value may be sent to: those it is bound to (`forgelink secrets set --host`); a secret of
 * the run's agent profile that is bound to none goes to the profile's model API (its hosts, or its gateway's origin).
 */
function secretHosts(secret: { name: string; hosts: readonly string[] }, profile: AgentProfile): string[] {
  if (secret.hosts.length > 0) return [...secret.hosts];
  return profile.secrets.includes(secret.name) ? [...profile.hosts] : [];
}

/** The broker's records of a run: every write audited, every refusal logged and kept for the run's `policy`. */
function recordBrokerDecisions(deps: PipelineDeps, run: Run, log: RunLog) {
  const refused: PolicyRefusal[] = [];
  const allowedWrites: BrokerRecord[] = [];
  const pending = new Set<Promise<void>>();
  return {
    refused,
    /** The writes let through to GitLab, with their answers' status: what the agent's API calls created. */
    allowedWrites,
    note(record: BrokerRecord): void {
      if (record.allowed) allowedWrites.push(record);
      if (!record.allowed) {
        const refusal: PolicyRefusal = { at: record.at, method: record.method, target: record.target, rule: record.rule ?? 'refused', message: record.message ?? '' };
        refused.push(refusal);
        log.system(`Policy refused ${refusal.method} ${refusal.target} (${refusal.rule}): ${refusalReason(refusal)}`);
      } else if (record.message !== null) {
        // Allowed, but the upstream gave no answer (or the sandbox left before it did): the run says so, not only the agent.
        log.system(`Broker: ${record.method} ${record.target} got no answer${record.status === null ? '' : ` (${record.status})`}: ${record.message}`);
      }
      const audit = deps.audit;
      if (audit === undefined) return;
      const write = audit
        .record(
          auditEntry(deps.clock.now(), {
            ownerId: run.userId,
            actor: run.userId,
            action: record.allowed ? 'broker.allowed' : 'broker.refused',
            connectionId: run.connectionId,
            runId: run.id,
            details: { method: record.method, target: record.target, refs: record.refs ?? null, rule: record.rule, message: record.message, status: record.status },
          }),
        )
        .catch((error: unknown) => deps.onError?.(error, run.id));
      pending.add(write);
      void write.finally(() => pending.delete(write));
    },
    async settled(): Promise<void> {
      await Promise.allSettled([...pending]);
    },
  };
}

/**
 * Whether the agent's workspace shows `newId` descending from `oldId`, asked inside the sandbox (never by a host git
 * over a repository the agent controls). Object ids name content, so what the workspace's objects say holds for the
 * pushed ones; replace refs and grafts, which could make history look otherwise, are switched off.
 */
async function isAncestorInWorkspace(session: SandboxSession, oldId: string, newId: string): Promise<boolean | undefined> {
  if (!/^[0-9a-f]{40,64}$/.test(oldId) || !/^[0-9a-f]{40,64}$/.test(newId)) return undefined;
  const exit = await session.exec({
    command: ['git', 'merge-base', '--is-ancestor', oldId, newId],
    env: { PATH: SANDBOX_DEFAULT_PATH, GIT_NO_REPLACE_OBJECTS: '1', GIT_GRAFT_FILE: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    timeoutMs: 60_000,
    offline: true,
  });
  return exit.exitCode === 0 ? true : exit.exitCode === 1 ? false : undefined;
}

/** The run's image, pulled and unpacked if this is its first use, with what that does in the run's log. */
async function readyImage(deps: PipelineDeps, ref: string, log: RunLog): Promise<{ digest: string; rootfs: string } | null> {
  if (ref === HOST_IMAGE) return null;
  if (deps.images === undefined) throw new ForgelinkError('images_unavailable', `This forgelink runs no images; ${ref} cannot be used.`);
  const image = await deps.images.ready(ref, (line) => log.system(line));
  if (image !== null) log.system(`Image ${ref} (${image.digest})`);
  return image;
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
  if (exit.canceled || signal.aborted) throw runCanceled();
  if (exit.timedOut) throw new ForgelinkError('timed_out', `${what} did not finish in time.`);
  if (exit.limit !== undefined) {
    const error = limitError(exit.limit, what, caps);
    throw new ForgelinkError(error.code, error.message);
  }
}

/**
 * Makes /workspace: with the repository cache, the mirror is brought up to date first (under its lock, with the
 * run's token, by forgelink's own git on the host or, through an upstream proxy, inside the sandbox), and a full
 * clone is a local `clone --shared` of it, offline; a shallow or partial clone comes from GitLab borrowing what the
 * mirror holds (`--reference`). Without the cache, a plain clone. A clone from the mirror that fails makes the
 * mirror checked in full (rebuilt if damaged), and the clone is tried once more.
 */
async function cloneWorkspace(input: {
  session: SandboxSession;
  env: Record<string, string>;
  run: Run;
  cloneUrl: string;
  baseBranch: string;
  expected: Map<string, string> | null;
  since: Date;
  head: string | null;
  mirror: { mirror: Mirror; of: MirrorOf } | null;
  /** forgelink's own git against GitLab on the host; null: the fetch into the mirror runs in the sandbox. */
  hostGit: GitLabGit | null;
  /** The mirror's update, when it was begun before the sandbox was made. */
  earlyUpdate: Promise<MirrorUpdate> | null;
  /**
   * Whether that update is this run's own fetch. A run waiting for another run's fetch clones after it: cloning
   * meanwhile would take CPU from that fetch, which every waiting run needs first.
   */
  fetchingEarly: boolean;
  workspaceDir: string;
  log: RunLog;
  now: () => Date;
  signal: AbortSignal;
  caps: RunCaps;
}): Promise<{ repoCache: 'cold' | 'warm' | 'off'; branches: Map<string, string> | null }> {
  const { session, env, run, log, signal, caps } = input;
  // Only the host's own git ever writes a mirror every later run borrows from: a run on an image (its git is the
  // image's) or a shallow or partial clone borrows what the mirror holds and fetches the rest from GitLab.
  const shallow = run.depth !== null || run.filter !== null || run.image.ref !== HOST_IMAGE;
  // Through an upstream proxy, the mirror is fetched in the sandbox, with the mirror's directory writable for that command alone.
  const inSandbox: MirrorFetch = {
    clone: null,
    fetch: async (repo) => {
      const exit = await session.exec({
        command: [
          'git', '-C', repo.sandbox, '-c', 'core.hooksPath=/dev/null', 'fetch', '--prune', '--no-tags', '--no-write-fetch-head', '--progress',
          '--', input.cloneUrl, ...MIRROR_REFSPECS,
        ],
        env,
        cwd: '/',
        timeoutMs: CLONE_TIMEOUT_MS,
        signal,
        writable: [MIRROR_MOUNT],
        onOutput: (chunk, stream) => log.output(chunk, stream),
      });
      throwIfStopped(exit, signal, 'git fetch into the repository cache', caps);
      if (exit.exitCode !== 0) {
        throw new ForgelinkError('clone_failed', `git fetch into the repository cache failed with exit code ${exit.exitCode}; the log shows git's message.`);
      }
    },
  };
  const fetch = input.hostGit !== null ? hostFetch(input.hostGit, log, signal) : inSandbox;
  const update = (distrust: boolean) =>
    updateMirror({ mirror: input.mirror!.mirror, of: input.mirror!.of, expected: input.expected, since: input.since, head: input.head, fetch, log: (line) => log.system(line), now: input.now, signal, distrust });

  // A warm mirror is cloned while this run fetches into it, and the workspace then brought to what the fetch left.
  if (input.mirror !== null && !shallow && input.earlyUpdate !== null && input.fetchingEarly && (await readableDuringUpdate(input.mirror.mirror))) {
    const made = await cloneDuringUpdate({ ...input, update: input.earlyUpdate });
    if (made !== null) return made;
    await emptyDirectory(input.workspaceDir);
  }

  let repoCache: 'cold' | 'warm' | 'off' = 'off';
  if (input.mirror === null) {
    // no cache on this server
  } else if (!shallow) {
    const updated = await (input.earlyUpdate ?? update(false));
    repoCache = updated.state;
    if (input.expected === null && !updated.refs.has(`refs/heads/${input.baseBranch}`)) {
      throw branchNotFound(input.baseBranch, run.projectPath ?? run.project);
    }
  } else if (await usableMirror(input.mirror.mirror)) {
    repoCache = 'warm';
    await markUsed(input.mirror.mirror, input.mirror.of, input.now());
    log.system(`Repository cache: warm; this ${run.image.ref === HOST_IMAGE ? 'shallow or partial clone' : 'run on an image'} borrows from the mirror without fetching into it.`);
  } else {
    log.system(`Repository cache: not used; ${run.image.ref === HOST_IMAGE ? 'a shallow or partial clone' : 'a run on an image'} does not build a mirror.`);
  }

  // A full clone with the mirror up to date is made from it alone (no network): a local clone sharing its objects,
  // `origin` then set to GitLab; it prints the branches it starts with (`refs/remotes/origin/*`), read before the agent
  // runs. Shallow and partial clones go to GitLab, borrowing what the mirror holds.
  const local = repoCache !== 'off' && !shallow;
  let listing = '';
  const clone = () => {
    listing = '';
    return session.exec({
      command: local
        ? [
            '/bin/sh', '-c', CLONE_FROM_MIRROR, 'forgelink-clone', input.baseBranch, MIRROR_IN_SANDBOX, input.cloneUrl,
          ]
        : [
            'git', 'clone', '--progress',
            ...(repoCache === 'off' ? [] : ['--reference', MIRROR_IN_SANDBOX]),
            ...(run.depth === null ? [] : ['--depth', String(run.depth)]),
            ...(run.filter === null ? [] : [`--filter=${run.filter}`]),
            '--branch', input.baseBranch, '--', input.cloneUrl, '/workspace',
          ],
      env,
      cwd: '/',
      timeoutMs: CLONE_TIMEOUT_MS,
      signal,
      // From the mirror, the clone needs no network.
      offline: local,
      onOutput: (chunk, stream) => {
        if (local && stream === 'stdout') listing += chunk;
        else log.output(chunk, stream);
      },
    });
  };
  let exit = await clone();
  throwIfStopped(exit, signal, 'git clone', caps);
  if (exit.exitCode !== 0 && repoCache !== 'off' && !shallow) {
    log.system('Repository cache: the clone failed while borrowing from the mirror; checking the mirror in full.');
    const checked = await update(true);
    // Rebuilt by this run or by another meanwhile, or sound after all (the failure was passing): one more try.
    await emptyDirectory(input.workspaceDir);
    if (checked.rebuilt) repoCache = checked.state;
    exit = await clone();
    throwIfStopped(exit, signal, 'git clone', caps);
  }
  if (exit.exitCode !== 0) throw new ForgelinkError('clone_failed', `git clone failed with exit code ${exit.exitCode}; the log shows git's message.`);
  return { repoCache, branches: local ? branchesOf(workspaceListing(listing).refs) : null };
}

/**
 * A full clone from the mirror (offline): `clone --shared` of branch $1 from the mirror at $2, `origin` set to GitLab's
 * URL $3, then the workspace's remote branches and tags listed (`workspaceListing` reads them).
 */
const CLONE_FROM_MIRROR =
  'git clone --progress --shared --branch "$1" -- "$2" /workspace && git -C /workspace remote set-url origin "$3" && ' +
  "git -C /workspace for-each-ref --format='%(objectname) %(refname) %(symref)' refs/remotes/origin/ refs/tags/";

/**
 * The workspace cloned from the mirror as it is while the run's update fetches into it, then — told on its standard
 * input once the update is over — given the mirror's new branches, tags and HEAD: `git update-ref --stdin` with the
 * changes forgelink read from the mirror (every object is already there, borrowed; deletions in a transaction of
 * their own, so `x` can give way to `x/y`), its branch checked out again at the new commit when that moved (as
 * `checkout -B`, which leaves no ORIG_HEAD behind, unlike a reset), and `origin/HEAD` when GitLab's
 * HEAD did. A line `@cloned` ends the listing of what the clone made. Exit 3: the mirror has no such branch yet.
 */
const CLONE_THEN_CATCH_UP = `
git --git-dir="$2" rev-parse --quiet --verify "refs/heads/$1" >/dev/null || { [ $? = 1 ] && exit 3; exit 1; }
{ ${CLONE_FROM_MIRROR}; } && echo @cloned || exit
read -r next reset head || exit 0
[ "$next" = catch-up ] || exit 0
git -C /workspace update-ref --no-deref --stdin >/dev/null &&
  { [ "$reset" != reset ] || git -C /workspace checkout --quiet --force -B "$1" "refs/remotes/origin/$1"; } &&
  { [ "$head" != head ] || git -C /workspace symbolic-ref refs/remotes/origin/HEAD "refs/remotes/origin/$4"; }
`;

/**
 * Null when the workspace must be made again after the update: the mirror had no such branch yet (said in the log
 * at once), the clone failed (what it printed is left out of the log), or the update rebuilt the mirror.
 */
async function cloneDuringUpdate(input: {
  session: SandboxSession;
  env: Record<string, string>;
  run: Run;
  cloneUrl: string;
  baseBranch: string;
  head: string | null;
  update: Promise<MirrorUpdate>;
  log: RunLog;
  signal: AbortSignal;
  caps: RunCaps;
}): Promise<{ repoCache: 'cold' | 'warm'; branches: Map<string, string> } | null> {
  const { log, signal } = input;
  const next = new PassThrough();
  // Stops the clone when the update fails first: the run fails with the update's error, not after the checkout.
  const stop = new AbortController();
  let stdout = '';
  const clonedLine = /(?:^|\n)@cloned\n/g;
  /** Where the listing ends (the `@cloned` line), once seen. */
  let listingEnd: number | null = null;
  // The clone's progress joins the log once it made the workspace.
  let held = '';
  let markCloned = () => {};
  const cloned = new Promise<void>((resolve) => (markCloned = resolve));
  const running = input.session.exec({
    command: ['/bin/sh', '-c', CLONE_THEN_CATCH_UP, 'forgelink-clone', input.baseBranch, MIRROR_IN_SANDBOX, input.cloneUrl, input.head ?? ''],
    env: input.env,
    cwd: '/',
    timeoutMs: CLONE_TIMEOUT_MS,
    signal: AbortSignal.any([signal, stop.signal]),
    offline: true,
    input: next,
    onOutput: (chunk, stream) => {
      if (stream === 'stderr') {
        if (listingEnd === null) held += chunk;
        else log.output(chunk, stream);
        return;
      }
      if (listingEnd !== null) return;
      // Only the new output (and the line break before it) is searched: a listing of many refs comes in many chunks.
      clonedLine.lastIndex = Math.max(0, stdout.length - 1);
      stdout += chunk;
      const marker = clonedLine.exec(stdout);
      if (marker === null) return;
      listingEnd = marker.index;
      log.output(held, 'stderr');
      markCloned();
    },
  });
  let ended = false;
  const updateFailed = input.update.then(
    () => new Promise<never>(() => {}),
    (error: unknown) => ({ error }),
  );
  const first = await Promise.race([
    cloned.then(() => 'cloned' as const),
    running.then((exit) => {
      ended = true;
      if (exit.exitCode === 3) log.system(`Repository cache: the mirror does not hold branch ${input.baseBranch} yet; the workspace is made once the fetch brought it.`);
      return 'ended' as const;
    }),
    updateFailed.then(() => 'failed' as const),
  ]);
  const finish = async () => {
    if (!next.writableEnded) next.end();
    return running;
  };
  if (first === 'failed') {
    stop.abort();
    await finish().catch(() => {});
  }
  let updated: MirrorUpdate;
  try {
    updated = await input.update;
  } catch (error) {
    await finish().catch(() => {});
    throw error;
  }
  if (!updated.refs.has(`refs/heads/${input.baseBranch}`)) {
    await finish().catch(() => {});
    throw branchNotFound(input.baseBranch, input.run.projectPath ?? input.run.project);
  }
  // The clone failed, the update rebuilt the mirror it read, or the command ended while the update went on (its
  // timeout, counted from before a long wait for another run's fetch): made again, as a clone after the update is.
  if (first !== 'cloned' || updated.rebuilt || ended) {
    const exit = await finish();
    if (exit.canceled || signal.aborted) throw runCanceled();
    if (exit.limit !== undefined) throwIfStopped(exit, signal, 'git clone', input.caps);
    return null;
  }
  // What the workspace shows of GitLab, against what the mirror now holds. A branch named HEAD is left out, as a
  // clone leaves it out: `origin/HEAD` is GitLab's HEAD.
  const mirrored = new Map([...updated.refs].filter(([name]) => name !== 'refs/heads/HEAD'));
  const seen = workspaceListing(stdout.slice(0, listingEnd ?? 0));
  const changes = refChanges(seen.refs, mirrored);
  const base = `refs/heads/${input.baseBranch}`;
  const reset = seen.refs.get(base) !== mirrored.get(base);
  const headMoved = input.head !== null && seen.head !== input.head && mirrored.has(`refs/heads/${input.head}`);
  next.end(changes === '' && !headMoved ? 'done\n' : `catch-up ${reset ? 'reset' : 'keep'} ${headMoved ? 'head' : 'keep'}\n${changes}`);
  const exit = await running;
  throwIfStopped(exit, signal, 'git clone', input.caps);
  if (exit.exitCode !== 0) return null;
  if (changes !== '') log.system('Repository cache: the workspace was cloned from the mirror during the fetch, then brought up to date with it.');
  return { repoCache: updated.state, branches: branchesOf(mirrored) };
}

/**
 * `git update-ref --stdin` transactions that make a workspace's `refs/remotes/origin/*` and tags what the mirror
 * holds (`refs/heads/*`, `refs/tags/*`; both maps name refs as the mirror does): the deletions first, in one of
 * their own. Empty when they already match.
 */
function refChanges(workspace: ReadonlyMap<string, string>, mirror: ReadonlyMap<string, string>): string {
  const inWorkspace = (name: string) => (name.startsWith('refs/heads/') ? `refs/remotes/origin/${name.slice('refs/heads/'.length)}` : name);
  const deletions = [...workspace.keys()].filter((name) => !mirror.has(name)).map((name) => `delete ${inWorkspace(name)}\n`);
  const updates = [...mirror].filter(([name, sha]) => workspace.get(name) !== sha).map(([name, sha]) => `update ${inWorkspace(name)} ${sha}\n`);
  return [deletions, updates].filter((commands) => commands.length > 0).map((commands) => `start\n${commands.join('')}commit\n`).join('');
}

/**
 * A workspace's `for-each-ref --format='%(objectname) %(refname) %(symref)'` of `refs/remotes/origin/` and `refs/tags/`,
 * named as the mirror names them (`refs/remotes/origin/x` as `refs/heads/x`), and the branch `origin/HEAD` names.
 */
function workspaceListing(text: string): { refs: Map<string, string>; head: string | null } {
  const refs = new Map<string, string>();
  let head: string | null = null;
  for (const line of text.split('\n')) {
    const [sha, name, symref] = line.split(' ');
    if (sha === undefined || name === undefined || !/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(sha)) continue;
    if (name === 'refs/remotes/origin/HEAD') head = symref?.replace(/^refs\/remotes\/origin\//, '') || null;
    else if (name.startsWith('refs/remotes/origin/')) refs.set(`refs/heads/${name.slice('refs/remotes/origin/'.length)}`, sha);
    else if (name.startsWith('refs/tags/')) refs.set(name, sha);
  }
  return { refs, head };
}

/** The exit code of forgelink's own git that failed (gitlab-git.ts), or null. */
function gitExitCode(error: unknown): number | null {
  return error instanceof GitExitError ? error.exitCode : null;
}

/** The fetch into a mirror by forgelink's own git on the host, its progress in the run's log. */
function hostFetch(git: GitLabGit, log: RunLog, signal: AbortSignal): MirrorFetch {
  const options = { signal, timeoutMs: CLONE_TIMEOUT_MS, onProgress: (chunk: string) => log.output(chunk, 'stderr') };
  const failed = (what: string, error: unknown) =>
    error instanceof ForgelinkError
      ? error
      : new ForgelinkError('clone_failed', `${what} failed with exit code ${gitExitCode(error) ?? 'unknown'}; the log shows git's message.`);
  return {
    fetch: (repo) =>
      git.fetch(repo.host, MIRROR_REFSPECS, options).catch((error: unknown) => {
        throw failed('git fetch into the repository cache', error);
      }),
    clone: (repo, config) =>
      git.cloneBare(repo, config, options).catch((error: unknown) => {
        throw failed('git clone of the repository cache\'s mirror', error);
      }),
  };
}

/**
 * The branches among refs named as the mirror names them, by branch name: what GitLab had when the mirror a
 * workspace was made from was last fetched, which the run's outputs are compared with.
 */
function branchesOf(refs: ReadonlyMap<string, string>): Map<string, string> {
  const branches = new Map<string, string>();
  for (const [name, sha] of refs) if (name.startsWith('refs/heads/')) branches.set(name.slice('refs/heads/'.length), sha);
  return branches;
}

function branchNotFound(branch: string, project: string): ForgelinkError {
  return new ForgelinkError('branch_not_found', `Branch ${branch} does not exist in ${project}.`);
}

/** Removes what `dir` holds, keeping the directory (a workspace to be made again). */
async function emptyDirectory(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await removeTree(path.join(dir, name));
}

/** `git ls-remote --symref`: every branch with its commit, and the branch HEAD points to. */
async function lsRemote(
  session: SandboxSession,
  env: Record<string, string>,
  cloneUrl: string,
  log: RunLog,
  signal: AbortSignal,
  caps: RunCaps,
  hostGit: GitLabGit | null = null,
): Promise<{ refs: Map<string, string>; head: string | null; all: Map<string, string> }> {
  let stdout = '';
  if (hostGit !== null) {
    try {
      stdout = await hostGit.lsRemote(['HEAD', 'refs/heads/*', 'refs/tags/*'], { signal, timeoutMs: LS_REMOTE_TIMEOUT_MS, onProgress: (chunk) => log.output(chunk, 'stderr') });
    } catch (error) {
      if (error instanceof ForgelinkError) throw error;
      throw unlisted(cloneUrl, gitExitCode(error));
    }
    return parseListing(stdout);
  }
  const exit = await session.exec({
    command: ['git', 'ls-remote', '--symref', '--', cloneUrl, 'HEAD', 'refs/heads/*', 'refs/tags/*'],
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
  if (exit.exitCode !== 0) throw unlisted(cloneUrl, exit.exitCode);
  return parseListing(stdout);
}

function unlisted(cloneUrl: string, exitCode: number | null): ForgelinkError {
  return new ForgelinkError(
    'repository_unreachable',
    `git could not list ${cloneUrl} (exit code ${exitCode}): the log shows git's message. Check the project path and that the token may read the repository.`,
  );
}

/** `git ls-remote --symref` output: every branch with its commit, the branch HEAD names, and every branch and tag. */
function parseListing(stdout: string): { refs: Map<string, string>; head: string | null; all: Map<string, string> } {
  const head = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(stdout)?.[1] ?? null;
  // Every branch and tag by full name (peeled `^{}` lines left out): what a mirror must hold to stand for GitLab.
  const all = new Map<string, string>();
  for (const match of stdout.matchAll(/^([0-9a-f]{40}|[0-9a-f]{64})\t(refs\/(?:heads|tags)\/[^\s^]+)$/gm)) all.set(match[2] as string, match[1] as string);
  return { refs: parseLsRemote(stdout), head, all };
}

/** What the broker saw the agent create in the run's project: issue and merge request iids, and whether an issue may have been created unseen. */
type BrokerCreated = { issues: Set<number>; mergeRequests: Set<number>; unreadIssues: boolean };

function brokerCreated(writes: readonly BrokerRecord[], project: { id: number | null; path: string; basePath: string }): BrokerCreated {
  const created: BrokerCreated = { issues: new Set(), mergeRequests: new Set(), unreadIssues: false };
  for (const write of writes) {
    const object = createdByWrite(write, project);
    if (object === null) continue;
    // A GraphQL request may be a mutation that created an issue; its answer is not read.
    if (object.kind === 'graphql' || (object.kind === 'issue' && object.iid === null)) created.unreadIssues = true;
    else if (object.kind === 'issue' && object.iid !== null) created.issues.add(object.iid);
    else if (object.kind === 'merge_request' && object.iid !== null) created.mergeRequests.add(object.iid);
  }
  return created;
}

/**
 * The run's outputs (docs/architecture.md, "Outputs"). The API lists what the connection's account created since the
 * run began, which may include another run's work on the same account; only this run's evidence makes an entry:
 * a merge request counts when its source branch is one the run created or moved, when a push reply of this run
 * named it, or when the broker saw this run create it; an issue counts, brokered, when the broker saw this run
 * create it. Without the broker's word (direct runs, or a creation whose answer the broker did not read) issues
 * are those of the time window.
 */
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
  created: BrokerCreated | null;
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
  const changed = new Set(branches.map((branch) => branch.name));
  const announced = new Set(pushMergeRequests.map((reply) => reply.iid));
  const created = input.created;
  apiMergeRequests = apiMergeRequests.filter((mr) => changed.has(mr.sourceBranch) || announced.has(mr.iid) || created?.mergeRequests.has(mr.iid) === true);
  if (created !== null && !created.unreadIssues) issues = issues.filter((issue) => created.issues.has(issue.iid));
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
