import type { Command } from 'commander';
import { CliError } from './api-client.ts';
import type { CliContext, CliIo } from './context.ts';
import { promptSecret, readStdin } from './input.ts';
import { addAdminKeyCommand } from './keys-commands.ts';

/** A password from stdin (its one trailing newline dropped; spaces are kept), or a hidden prompt asked twice. */
async function readPassword(io: CliIo, fromStdin: boolean): Promise<string> {
  if (fromStdin || !io.stdin.isTTY) return (await readStdin(io)).replace(/\r?\n$/, '');
  const first = await promptSecret(io, 'New password: ');
  if ((await promptSecret(io, 'Repeat it: ')) !== first) throw new CliError('the two passwords differ; nothing was changed');
  return first;
}

/** `forgelink serve` and `forgelink worker` (docs/architecture.md, "Processes"). */
export function addServeCommand(program: Command, cli: CliContext): void {
  program
    .command('serve')
    .description('run the server: the HTTP API, the web dashboard, runs and the connection health monitor (configuration from the environment; see README)')
    .option(
      '--new-master-key',
      'start even though the master key cannot open the secrets the database holds (a lost master.key): a new key is ' +
        'generated if none is given, and connections whose tokens cannot be opened must be reconnected',
    )
    .option('--no-runs', 'serve the API and dashboard only; `forgelink worker` processes on the same database execute the runs (PostgreSQL)')
    .action(async (options: { newMasterKey?: boolean; runs?: boolean }) =>
      (await cli.local()).serve({ newMasterKey: options.newMasterKey === true, runs: options.runs !== false }),
    );
  program
    .command('worker')
    .description('execute runs from the queue shared through DATABASE_URL (PostgreSQL); serves only /healthz on FORGELINK_LISTEN')
    .action(async () => (await cli.local()).worker());
}

function addUserCommands(admin: Command, cli: CliContext): void {
  const user = admin.command('user').description('manage users: add, set-password, list, key');
  user
    .command('add <name>')
    .description('create a user and print their API key once')
    .option('--admin', 'make the user an administrator')
    .option('--password-stdin', 'also set their dashboard password, read from stdin')
    .action(async (name: string, options: { admin?: boolean; passwordStdin?: boolean }, command: Command) => {
      const password = options.passwordStdin ? await readPassword(cli.io, true) : undefined;
      const created = await (await cli.local()).addUser(name, options.admin === true, password);
      cli.print(command, created, () =>
        [
          `Created user ${created.name} (${created.id})${created.isAdmin ? ' as administrator' : ''}${password === undefined ? '' : ' with a dashboard password'}.`,
          `API key (shown once, store it now): ${created.apiKey}`,
        ].join('\n'),
      );
    });
  user
    .command('set-password <name>')
    .description('set or change a user\'s dashboard password (from stdin, or a hidden prompt); signs them out everywhere')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await (await cli.local()).setPassword(name, await readPassword(cli.io, false));
      cli.print(command, result, () => `Password set for ${result.name}; ${result.sessionsEnded} dashboard session(s) ended.`);
    });
  user
    .command('list')
    .description('list users')
    .action(async (_options: unknown, command: Command) => {
      const users = await (await cli.local()).listUsers();
      cli.print(command, { users }, () =>
        users.length === 0 ? 'No users yet.' : users.map((u) => `${u.id}  ${u.name}${u.isAdmin ? '  admin' : ''}`).join('\n'),
      );
    });
  addAdminKeyCommand(user, { issueKey: async (name, keyName) => (await cli.local()).issueKey(name, keyName), print: cli.print });
}

function addRotateKeyCommand(admin: Command, cli: CliContext): void {
  admin
    .command('rotate-key')
    .description('add a new master key version and re-seal every stored secret with it')
    .option('--reseal-only', 'do not add a key version; re-seal secrets still under an older one')
    .action(async (options: { resealOnly?: boolean }, command: Command) => {
      const result = await (await cli.local()).rotateKey({ resealOnly: options.resealOnly === true });
      cli.print(command, result, () =>
        [
          `Master key is now ${result.keyId}; re-sealed ${result.resealed} of ${result.total} secret(s). Older key versions stay readable.`,
          ...(result.failed.length > 0 ? [`Could not open ${result.failed.length} secret(s): ${result.failed.join(', ')}`] : []),
        ].join('\n'),
      );
      if (result.failed.length > 0) cli.exitCode = 1;
    });
}

/** `forgelink admin …`: local administration on the data directory, no server needed. */
export function addAdminCommands(program: Command, cli: CliContext): void {
  const admin = program
    .command('admin')
    .description('local administration on this machine\'s data directory: users (add, set-password, list, key) and rotate-key');
  addUserCommands(admin, cli);
  addRotateKeyCommand(admin, cli);
}
