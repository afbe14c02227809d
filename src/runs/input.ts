import { InputError, normaliseOrigin, originMatches } from '../core/index.ts';
import { checkRunSecrets } from './secret-names.ts';
import type { RunSettings } from './settings.ts';

export type StartRunInput = {
  connectionId: string;
  project: string;
  branch?: string | undefined;
  command: string[];
  allowHosts?: string[] | undefined;
  timeoutSeconds?: number | undefined;
  /** Names of the user's secrets the run receives as environment variables. */
  secrets?: string[] | undefined;
};

export type CheckedRunInput = {
  connectionId: string;
  project: string;
  branch: string | null;
  command: string[];
  allowHosts: string[];
  timeoutMs: number;
  secrets: string[];
};

/**
 * A branch name git would accept (the rules of `git check-ref-format --branch`, minus the ones that
 * only matter for refs we never create).
 */
export function isValidBranchName(name: string): boolean {
  if (name === '' || name.length > 255 || name === '@') return false;
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock')) {
    return false;
  }
  if (name.includes('..') || name.includes('//') || name.includes('@{') || name.includes('/.')) return false;
  return !/[\x00-\x20\x7f~^:?*[\\]/.test(name) && !name.startsWith('.');
}

/** Validates what a user asked for; throws InputError naming the field. */
export function checkRunInput(input: StartRunInput, settings: RunSettings): CheckedRunInput {
  const project = input.project.trim();
  if (project === '') throw new InputError('invalid_project', 'The project is empty: give its path (group/app) or numeric id.', { field: 'project' });
  if (!/^\d+$/.test(project) && !/^[A-Za-z0-9_.][A-Za-z0-9_.-]*(\/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$/.test(project)) {
    throw new InputError(
      'invalid_project',
      `"${project}" is not a project path (group/sub/app) or numeric id.`,
      { field: 'project' },
    );
  }

  const branch = input.branch === undefined || input.branch.trim() === '' ? null : input.branch.trim();
  if (branch !== null && !isValidBranchName(branch)) {
    throw new InputError('invalid_branch', `"${branch}" is not a valid branch name.`, { field: 'branch' });
  }

  if (input.command.length === 0 || (input.command[0] ?? '').trim() === '') {
    throw new InputError('invalid_command', 'The agent command is empty.', { field: 'command' });
  }
  if (input.command.some((part) => part.includes('\0'))) {
    throw new InputError('invalid_command', 'The agent command contains a NUL character.', { field: 'command' });
  }

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

  const secrets = checkRunSecrets(input.secrets ?? []);
  return { connectionId: input.connectionId, project, branch, command: [...input.command], allowHosts, timeoutMs, secrets };
}

/** `90`, `90s`, `15m`, `2h` → seconds; null when unreadable. */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+)\s*(s|m|h)?\s*$/i.exec(text);
  if (!match) return null;
  const value = Number(match[1]);
  const unit = (match[2] ?? 's').toLowerCase();
  return value * (unit === 'h' ? 3600 : unit === 'm' ? 60 : 1);
}
