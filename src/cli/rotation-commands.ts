import type { Command } from 'commander';
import type { ConnectionView } from '../core/index.ts';
import { CliError, type ApiClient } from './api-client.ts';
import { expiryText } from './format.ts';
import { rotationText, runDefaultsText } from './rotation-format.ts';

type Io = {
  api(command: Command): Promise<ApiClient>;
  print(command: Command, value: unknown, human: () => string): void;
};

/** `30d`, `4w` or `30` (days) as a whole number of days. */
export function parseDays(text: string, flag: string): number {
  const match = /^\s*(\d+)\s*([dw]?)\s*$/i.exec(text);
  if (match === null) throw new CliError(`${flag}: expected a number of days such as 30d or 4w, got "${text}"`);
  return Number(match[1]) * (match[2]?.toLowerCase() === 'w' ? 7 : 1);
}

/** `forgelink connections rotation <id>` and `forgelink connections rotate <id>`. */
export function addRotationCommands(connections: Command, io: Io): void {
  connections
    .command('rotation <id>')
    .description('turn self-rotation of a personal access token on or off: forgelink rotates it through GitLab before it expires')
    .option('--enable', 'rotate the token when it gets close to its expiry')
    .option('--disable', 'stop rotating it')
    .option('--lifetime <days>', 'how long each new token lives, e.g. 30d or 4w (2 to 365 days; default 30d)')
    .option('--threshold <days>', 'rotate when this many days or fewer are left, e.g. 7d (default 7d)')
    .addHelpText(
      'after',
      '\nGitLab lets a token rotate itself only when it has the api or self_rotate scope (GitLab 16.10 or later).\n' +
        'Each rotation revokes the old token at GitLab; forgelink stores the new one before anything uses it.',
    )
    .action(async (id: string, options: { enable?: boolean; disable?: boolean; lifetime?: string; threshold?: string }, command: Command) => {
      if (options.enable === options.disable) throw new CliError('give either --enable or --disable');
      const rotation = {
        enabled: options.enable === true,
        ...(options.lifetime === undefined ? {} : { lifetimeDays: parseDays(options.lifetime, '--lifetime') }),
        ...(options.threshold === undefined ? {} : { thresholdDays: parseDays(options.threshold, '--threshold') }),
      };
      const connection = await (await io.api(command)).request<ConnectionView>('PATCH', `/connections/${encodeURIComponent(id)}`, { rotation });
      io.print(command, connection, () => `${connection.id}  rotation ${rotationText(connection)}`);
    });

  connections
    .command('set <id>')
    .description('the defaults this connection gives its runs: how they hold credentials, and run policy options it turns off')
    .option('--credentials <mode>', 'brokered, direct, or default (the server\'s FORGELINK_CREDENTIALS)')
    // The lifting flag first: commander then leaves the option undefined when neither is given.
    .option('--tags', 'lift --no-tags (runs may then do what the operator allows)')
    .option('--no-tags', 'its runs may not push or create tags')
    .option('--merge', 'lift --no-merge')
    .option('--no-merge', 'its runs may not merge or approve merge requests')
    .option('--read-other-projects', 'lift --no-read-other-projects')
    .option('--no-read-other-projects', 'its runs may not read projects other than their own')
    .addHelpText('after', '\nA connection can only turn run policy options off; what the operator (FORGELINK_POLICY) leaves off stays off.')
    .action(async (id: string, options: { credentials?: string; tags?: boolean; merge?: boolean; readOtherProjects?: boolean }, command: Command) => {
      const body: { credentials?: 'brokered' | 'direct' | null; policy?: Record<string, boolean> } = {};
      if (options.credentials !== undefined) {
        const mode = options.credentials.trim();
        if (mode !== 'brokered' && mode !== 'direct' && mode !== 'default') {
          throw new CliError(`--credentials: expected brokered, direct or default, not "${options.credentials}"`, { field: '--credentials' });
        }
        body.credentials = mode === 'default' ? null : mode;
      }
      const policy = {
        ...(options.tags === undefined ? {} : { allowTags: options.tags }),
        ...(options.merge === undefined ? {} : { allowMerge: options.merge }),
        ...(options.readOtherProjects === undefined ? {} : { readOtherProjects: options.readOtherProjects }),
      };
      if (Object.keys(policy).length > 0) body.policy = policy;
      if (Object.keys(body).length === 0) throw new CliError('give --credentials or a policy flag (--no-tags, --no-merge, --no-read-other-projects, or --tags, --merge, --read-other-projects)');
      const connection = await (await io.api(command)).request<ConnectionView>('PATCH', `/connections/${encodeURIComponent(id)}`, body);
      io.print(command, connection, () => `${connection.id}  ${runDefaultsText(connection)}`);
    });

  connections
    .command('rotate <id>')
    .description('rotate a personal access token now: GitLab revokes it and forgelink stores its successor')
    .action(async (id: string, _options: unknown, command: Command) => {
      const connection = await (await io.api(command)).request<ConnectionView>('POST', `/connections/${encodeURIComponent(id)}/rotate`);
      io.print(command, connection, () => `Rotated ${connection.id}; the new token expires ${expiryText(connection.expiresAt, new Date())}.`);
    });
}
