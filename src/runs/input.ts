import { resolvePolicyOptions } from '../broker/index.ts';
import { CREDENTIALS_MODES, InputError, type Connection, type PolicyOptions, type PolicyOverrides, RUN_CLONE_FILTERS, type RunCloneFilter, agentCommand, type CredentialsMode, findAgent, branchNameProblem, normaliseOrigin, originMatches, parseImageRef, projectPathProblem } from '../core/index.ts';
import { checkRunSecrets } from './secret-names.ts';
import type { RunSettings } from './settings.ts';

export type StartRunInput = {
  connectionId: string;
  project: string;
  branch?: string | undefined;
  /** The agent profile; `custom` (the user's own `command`) when absent. */
  agent?: string | undefined;
  /** What the profile's agent should do; the profile's command gets it as one argument. */
  task?: string | undefined;
  command?: string[] | undefined;
  allowHosts?: string[] | undefined;
  timeoutSeconds?: number | undefined;
  /** Names of the user's secrets the run receives as environment variables. */
  secrets?: string[] | undefined;
  /** `git clone --depth`: how many commits of history the workspace gets. */
  depth?: number | undefined;
  /** `git clone --filter`: `blob:none` fetches file contents only as they are needed. */
  filter?: string | undefined;
  /** `brokered` or `direct`; the connection's, then the server's (FORGELINK_CREDENTIALS) when absent. */
  credentials?: string | undefined;
  /** Run policy options this run turns off (docs/contract.md, "Run policy"); `true` only confirms what is allowed. */
  policy?: PolicyOverrides | undefined;
  /** The run image (docs/contract.md, "Run images"); the profile's when absent. */
  image?: string | undefined;
};

export type CheckedRunInput = {
  connectionId: string;
  project: string;
  branch: string | null;
  agent: string;
  image: string;
  command: string[];
  allowHosts: string[];
  timeoutMs: number;
  /** The profile's secrets and the user's, without repeats. */
  secrets: string[];
  /** The secrets the profile needs. */
  agentSecrets: string[];
  depth: number | null;
  filter: RunCloneFilter | null;
  /** What the run asked for; null: its connection's, then the server's (resolveRunPolicy). */
  credentials: CredentialsMode | null;
  policy: PolicyOverrides | null;
};

/**
 * Limits on the agent command, checked before a run is queued. Linux refuses an `execve` whose single
 * argument exceeds 128 KiB (MAX_ARG_STRLEN) or whose arguments and environment together exceed ARG_MAX
 * (2 MiB with the usual 8 MiB stack); the command is also wrapped by bubblewrap's own arguments and runs
 * next to the agent's environment, so these stay well under both.
 */
export const COMMAND_LIMITS = {
  /** Arguments, the program included. */
  maxArgs: 1024,
  /** Bytes (UTF-8) of one argument. */
  maxArgBytes: 64 * 1024,
  /** Bytes (UTF-8) of all arguments together. */
  maxTotalBytes: 256 * 1024,
} as const;

function kib(bytes: number): string {
  return `${bytes / 1024} KiB`;
}

/** Why the command cannot be run as given, or null. */
export function commandProblem(command: readonly string[]): string | null {
  if (command.length === 0 || (command[0] ?? '').trim() === '') return 'The agent command is empty.';
  if (command.length > COMMAND_LIMITS.maxArgs) {
    return `The agent command has ${command.length} arguments; at most ${COMMAND_LIMITS.maxArgs} are allowed.`;
  }
  let total = 0;
  for (const [index, part] of command.entries()) {
    if (part.includes('\0')) return 'The agent command contains a NUL character.';
    const bytes = Buffer.byteLength(part, 'utf8');
    if (bytes > COMMAND_LIMITS.maxArgBytes) {
      return `Argument ${index + 1} of the agent command is ${bytes} bytes; one argument may be at most ${kib(COMMAND_LIMITS.maxArgBytes)} (${COMMAND_LIMITS.maxArgBytes} bytes). Pass larger input in a file or on stdin of a script instead.`;
    }
    total += bytes + 1;
  }
  if (total > COMMAND_LIMITS.maxTotalBytes) {
    return `The agent command is ${total} bytes; the whole command may be at most ${kib(COMMAND_LIMITS.maxTotalBytes)} (${COMMAND_LIMITS.maxTotalBytes} bytes).`;
  }
  return null;
}

/** Validates what a user asked for; throws InputError naming the field. */
export function checkRunInput(input: StartRunInput, settings: RunSettings): CheckedRunInput {
  const project = input.project.trim();
  const projectProblem = projectPathProblem(project);
  if (projectProblem !== null) {
    throw new InputError('invalid_project', `The project ${project === '' ? '' : `"${project}" `}${projectProblem}.`, { field: 'project' });
  }

  const branch = input.branch === undefined || input.branch.trim() === '' ? null : input.branch.trim();
  const branchProblem = branch === null ? null : branchNameProblem(branch);
  if (branchProblem !== null) {
    throw new InputError('invalid_branch', `"${branch}" is not a valid branch name: it ${branchProblem}.`, { field: 'branch' });
  }

  const profile = findAgent(settings.agents, input.agent?.trim() || 'custom');
  const command = agentCommand(profile, { task: input.task, command: input.command });
  const problem = commandProblem(command);
  if (problem !== null) throw new InputError('invalid_command', problem, { field: 'command' });

  const allowHosts: string[] = [];
  for (const entry of input.allowHosts ?? []) {
    const origin = normaliseOrigin(entry);
    if (origin === null) {
      throw new InputError('invalid_allow_host', `"${entry}" is not a host or host:port.`, { field: 'allowHosts' });
    }
    if (!settings.userHostPatterns.some((pattern) => pattern === '*' || originMatches(pattern, origin))) {
      throw new InputError(
        'allow_host_not_permitted',
        settings.userHostPatterns.length === 0
          ? `Runs may not add hosts to their allowlist on this server (asked for ${origin}); the operator can permit some with FORGELINK_RUN_USER_HOSTS.`
          : `${origin} is not among the hosts the operator lets runs add (${settings.userHostPatterns.join(', ')}).`,
        { field: 'allowHosts' },
      );
    }
    if (!allowHosts.includes(origin)) allowHosts.push(origin);
  }

  let timeoutMs = settings.defaultTimeoutMs;
  if (input.timeoutSeconds !== undefined) {
    if (!Number.isInteger(input.timeoutSeconds) || input.timeoutSeconds <= 0) {
      throw new InputError('invalid_timeout', 'The timeout must be a positive whole number of seconds.', { field: 'timeoutSeconds' });
    }
    timeoutMs = input.timeoutSeconds * 1000;
    if (timeoutMs > settings.maxTimeoutMs) {
      throw new InputError(
        'invalid_timeout',
        `The timeout may be at most ${Math.floor(settings.maxTimeoutMs / 1000)} seconds on this server.`,
        { field: 'timeoutSeconds' },
      );
    }
  }

  // The profile's secrets (its model key) come with it; the user may name more.
  const image = parseImageRef(input.image === undefined || input.image.trim() === '' ? profile.image : input.image).ref;
  const agentSecrets = [...profile.secrets];
  const secrets = [...new Set([...agentSecrets, ...checkRunSecrets(input.secrets ?? [])])];
  let depth: number | null = null;
  if (input.depth !== undefined) {
    if (!Number.isSafeInteger(input.depth) || input.depth < 1 || input.depth > 2 ** 31 - 1) {
      throw new InputError('invalid_depth', 'depth must be a whole number of commits, 1 or more.', { field: 'depth' });
    }
    depth = input.depth;
  }
  let filter: RunCloneFilter | null = null;
  if (input.filter !== undefined) {
    const wanted = input.filter.trim();
    if (!(RUN_CLONE_FILTERS as readonly string[]).includes(wanted)) {
      throw new InputError('invalid_filter', `filter "${input.filter}" is not supported; use ${RUN_CLONE_FILTERS.join(' or ')}.`, { field: 'filter' });
    }
    filter = wanted as RunCloneFilter;
  }
  const credentials = input.credentials ?? null;
  if (credentials !== null && !(CREDENTIALS_MODES as readonly string[]).includes(credentials)) {
    throw new InputError('invalid_credentials', `credentials must be brokered or direct, not "${credentials}".`, { field: 'credentials' });
  }
  const policy = input.policy === undefined ? null : checkPolicyOverrides(input.policy);
  return {
    connectionId: input.connectionId,
    project,
    branch,
    agent: profile.name,
    image,
    command: [...command],
    allowHosts,
    timeoutMs,
    secrets,
    agentSecrets,
    depth,
    filter,
    credentials: credentials as CredentialsMode | null,
    policy,
  };
}

const POLICY_OPTION_NAMES = ['allowTags', 'allowMerge', 'readOtherProjects'] as const;

function checkPolicyOverrides(policy: unknown): PolicyOverrides {
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new InputError('invalid_policy', 'policy must be an object such as {"allowMerge": false}.', { field: 'policy' });
  }
  const checked: PolicyOverrides = {};
  for (const [name, value] of Object.entries(policy)) {
    if (!(POLICY_OPTION_NAMES as readonly string[]).includes(name)) {
      throw new InputError('invalid_policy', `policy.${name} is not a run policy option; the options are ${POLICY_OPTION_NAMES.join(', ')}.`, { field: `policy.${name}` });
    }
    if (typeof value !== 'boolean') throw new InputError('invalid_policy', `policy.${name} must be true or false.`, { field: `policy.${name}` });
    checked[name as (typeof POLICY_OPTION_NAMES)[number]] = value;
  }
  return checked;
}

/**
 * How the run holds its credentials and the policy options its broker applies (docs/contract.md, "Run policy"):
 * credentials are the run's, else its connection's, else the server's; the options are the operator's narrowed by
 * the connection and then by the run. A run asking for more than that, or narrowing the policy of a direct run
 * (which has no broker to apply it), is an InputError naming the field, before anything is queued.
 */
export function resolveRunPolicy(
  checked: Pick<CheckedRunInput, 'credentials' | 'policy'>,
  connection: Pick<Connection, 'credentials' | 'policy'>,
  settings: Pick<RunSettings, 'credentials' | 'policy'>,
): { credentials: CredentialsMode; options: PolicyOptions | null } {
  const credentials = checked.credentials ?? connection.credentials ?? settings.credentials;
  if (credentials === 'direct') {
    if (checked.policy !== null && Object.keys(checked.policy).length > 0) {
      throw new InputError(
        'policy_needs_brokered',
        'policy: a direct run holds the real token and has no broker to apply the run policy; ask for "credentials": "brokered" (forgelink run --credentials brokered) to narrow it.',
        { field: 'policy' },
      );
    }
    return { credentials, options: null };
  }
  return { credentials, options: resolvePolicyOptions(settings.policy, connection.policy, checked.policy) };
}

/** `90`, `90s`, `15m`, `2h` → seconds; null when unreadable. */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+)\s*(s|m|h)?\s*$/i.exec(text);
  if (!match) return null;
  const value = Number(match[1]);
  const unit = (match[2] ?? 's').toLowerCase();
  return value * (unit === 'h' ? 3600 : unit === 'm' ? 60 : 1);
}
