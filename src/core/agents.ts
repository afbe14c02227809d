import { InputError } from './errors.ts';
import { parseImageRef } from './images.ts';
import { normaliseOrigin, originOfBaseUrl } from './origins.ts';

/** How a run's stdout is shown: as it comes, or Claude Code's `stream-json` events turned into readable lines. */
export type AgentOutput = 'text' | 'claude-stream-json';

/**
 * How to run one agent (docs/contract.md, "Agent profiles"). `command` holds `{task}` where the user's task
 * goes, as one argument; `custom` has no command of its own and runs the user's.
 */
export type AgentProfile = {
  name: string;
  /** The run's root filesystem: `host` (the host's /usr) or an image reference (core/images.ts). */
  image: string;
  command: string[];
  /** Names of the user's secrets the agent needs (its model key); a run without one is refused. */
  secrets: string[];
  /** Origins the agent must reach besides GitLab, added to the run's allowlist. */
  hosts: string[];
  /** Environment defaults; forgelink's own variables and the user's secrets win over them. */
  env: Record<string, string>;
  /** The variable that points the agent at its model API; when `env` sets it, that URL's origin is the host. */
  baseUrlEnv: string | null;
  output: AgentOutput;
};

export const TASK_PLACEHOLDER = '{task}';

/**
 * The `codex` profile's command for the Codex binary `codex` (docs/contract.md, "Agent profiles"):
 * - `--dangerously-bypass-approvals-and-sandbox`: no approval prompts (nobody is there to answer) and no sandbox
 *   of Codex's own (its Landlock/seccomp or bubblewrap one would nest inside forgelink's): forgelink's is the boundary.
 * - `--ephemeral`: no session files under ~/.codex to keep.
 * - `--disable plugins --disable apps`, `analytics.enabled=false`, `check_for_update_on_startup=false`: without
 *   them Codex also calls github.com, api.github.com, chatgpt.com and ab.chatgpt.com (plugin catalogue, metrics,
 *   update check), which a run's allowlist refuses.
 * - a model provider of its own (`openai-api`: the Responses API over HTTPS at `OPENAI_BASE_URL`, default
 *   `https://api.openai.com/v1`, with the key from `OPENAI_API_KEY`): Codex's built-in provider ignores
 *   OPENAI_BASE_URL and first tries a WebSocket. `sh` puts the variable into Codex's `-c` option; the task stays
 *   one argument (`$1`), never part of the script. `options` go before it (`-m <model>`, say).
 */
export function codexCommand(codex: string, options: readonly string[] = []): string[] {
  // A TOML inline table inside a double-quoted shell word, so that the shell expands the variable.
  const provider =
    'model_providers.openai-api={name=\\"OpenAI API\\", base_url=\\"${OPENAI_BASE_URL:-https://api.openai.com/v1}\\", env_key=\\"OPENAI_API_KEY\\", wire_api=\\"responses\\"}';
  const extra = options.map((option) => ` '${option.replaceAll("'", "'\\''")}'`).join('');
  const quiet = '--disable plugins --disable apps -c analytics.enabled=false -c check_for_update_on_startup=false';
  const script = `exec "$0" exec --dangerously-bypass-approvals-and-sandbox --ephemeral ${quiet} -c model_provider=openai-api -c "${provider}"${extra} -- "$1"`;
  return ['sh', '-c', script, codex, TASK_PLACEHOLDER];
}

/** The profiles forgelink ships; operators add and change them with FORGELINK_AGENTS. */
export const BUILT_IN_AGENTS: readonly AgentProfile[] = [
  {
    name: 'claude-code',
    image: 'host',
    // The sandbox is the boundary, so Claude Code may use its tools without asking; it refuses this mode as
    // root, and agents run as an unprivileged user inside.
    command: ['claude', '-p', TASK_PLACEHOLDER, '--output-format', 'stream-json', '--verbose', '--permission-mode', 'bypassPermissions'],
    secrets: ['ANTHROPIC_API_KEY'],
    hosts: ['api.anthropic.com:443'],
    // Without these it also calls api.anthropic.com for telemetry and update checks, which a gateway setup refuses.
    env: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1' },
    baseUrlEnv: 'ANTHROPIC_BASE_URL',
    output: 'claude-stream-json',
  },
  {
    name: 'codex',
    image: 'host',
    command: codexCommand('codex'),
    secrets: ['OPENAI_API_KEY'],
    hosts: ['api.openai.com:443'],
    env: {},
    baseUrlEnv: 'OPENAI_BASE_URL',
    output: 'text',
  },
  { name: 'custom', image: 'host', command: [], secrets: [], hosts: [], env: {}, baseUrlEnv: null, output: 'text' },
];

/**
 * The origins a profile's runs may reach: the host of its base-URL variable when the profile's env points
 * it at a gateway (and the operator listed no hosts of their own for it), else its hosts.
 */
export function agentHosts(profile: AgentProfile, explicitHosts: boolean = false): string[] {
  const baseUrl = profile.baseUrlEnv === null ? undefined : profile.env[profile.baseUrlEnv];
  if (baseUrl === undefined || explicitHosts) return [...profile.hosts];
  return [originOfBaseUrl(baseUrl)];
}

export function findAgent(profiles: readonly AgentProfile[], name: string): AgentProfile {
  const profile = profiles.find((candidate) => candidate.name === name);
  if (profile === undefined) {
    throw new InputError('unknown_agent', `There is no agent profile "${name}"; this server has ${profiles.map((p) => p.name).join(', ')}.`, {
      field: 'agent',
    });
  }
  return profile;
}

/** The command a run executes: the profile's with the task in place, or the user's own for `custom`. */
export function agentCommand(profile: AgentProfile, input: { task: string | undefined; command: string[] | undefined }): string[] {
  if (profile.command.length === 0) {
    if (input.command === undefined || input.command.length === 0) {
      throw new InputError('invalid_command', `The ${profile.name} profile runs your own command: give one (after -- on the command line).`, { field: 'command' });
    }
    if (input.task !== undefined) {
      throw new InputError('invalid_task', `The ${profile.name} profile takes a command, not a task.`, { field: 'task' });
    }
    return input.command;
  }
  if (input.command !== undefined) {
    throw new InputError('invalid_command', `The ${profile.name} profile has its own command; give a task instead.`, { field: 'command' });
  }
  const task = input.task?.trim() ?? '';
  if (task === '') throw new InputError('invalid_task', `Say what the ${profile.name} agent should do: the task is empty.`, { field: 'task' });
  return profile.command.map((part) => (part === TASK_PLACEHOLDER ? task : part));
}

/** Why an operator's profile cannot be used, or null; `where` names it for the message. */
export function agentProfileProblem(profile: AgentProfile): string | null {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(profile.name)) return 'the name must be lower-case letters, digits, ".", "_" or "-"';
  if (profile.name !== 'custom' && profile.command.length === 0) return 'command: must not be empty';
  if (profile.command.length > 0 && !profile.command.includes(TASK_PLACEHOLDER)) return `command: must hold ${TASK_PLACEHOLDER} where the task goes`;
  try {
    parseImageRef(profile.image);
  } catch (error) {
    return `image: ${(error as Error).message}`;
  }
  for (const host of profile.hosts) if (normaliseOrigin(host) === null) return `hosts: "${host}" is not a host:port`;
  for (const name of [...profile.secrets, ...Object.keys(profile.env)]) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `"${name}" is not an environment variable name`;
  }
  if (profile.baseUrlEnv !== null) {
    const baseUrl = profile.env[profile.baseUrlEnv];
    if (baseUrl !== undefined && !/^https?:\/\/[^/]/i.test(baseUrl)) return `env.${profile.baseUrlEnv}: "${baseUrl}" is not an http(s) URL`;
  }
  return null;
}
