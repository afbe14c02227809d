import type { Command } from 'commander';
import type { SecretView } from '../secrets/index.ts';
import { CliError, type ApiClient } from './api-client.ts';
import type { CliIo } from './context.ts';
import { promptSecret, readStdin } from './input.ts';

type Io = {
  api(command: Command): Promise<ApiClient>;
  print(command: Command, value: unknown, human: () => string): void;
  io: CliIo;
};

/** Refuses a bad name before the value is asked for, with the server's words. */
async function checkedName(name: string): Promise<string> {
  const { secretNameProblem } = await import('../core/index.ts');
  const problem = secretNameProblem(name);
  if (problem !== null) throw new CliError(`The secret name "${name}" ${problem}. (name)`);
  return name;
}

/** The value from stdin (one trailing newline dropped, as `echo` adds it), or a hidden prompt on a terminal. */
async function readValue(io: CliIo, name: string): Promise<string> {
  if (!io.stdin.isTTY) return (await readStdin(io)).replace(/\r?\n$/, '');
  return promptSecret(io, `Value of ${name} (not shown): `);
}

function secretLine(secret: SecretView): string {
  return [
    secret.name.padEnd(24),
    (secret.hosts.length === 0 ? '—' : secret.hosts.join(',')).padEnd(28),
    `created ${secret.createdAt}`,
    `updated ${secret.updatedAt}`,
    `last used ${secret.lastUsedAt ?? 'never'}`,
  ].join('  ');
}

/** `forgelink secrets set|list|delete` (docs/contract.md, "Secrets"). */
export function addSecretCommands(program: Command, io: Io): void {
  const secrets = program
    .command('secrets')
    .description('keep named secrets (model API keys…) that runs receive as environment variables with --secret NAME');

  secrets
    .command('set <NAME>')
    .description('create or replace a secret; the value is read from stdin, or asked for without echo on a terminal')
    .option('--host <host[:port]>', 'a host the secret is meant for, e.g. api.anthropic.com:443 (repeatable; default: keep the current ones)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .addHelpText(
      'after',
      '\nThe value is never taken from an argument (it would show in the process list) and never shown again.\n' +
        'Example:\n  printf %s "$KEY" | forgelink secrets set ANTHROPIC_API_KEY --host api.anthropic.com:443',
    )
    .action(async (name: string, options: { host: string[] }, command: Command) => {
      await checkedName(name);
      const client = await io.api(command);
      const value = await readValue(io.io, name);
      const secret = await client.request<SecretView>('PUT', `/secrets/${encodeURIComponent(name)}`, {
        value,
        ...(options.host.length === 0 ? {} : { hosts: options.host }),
      });
      io.print(command, secret, () => `Saved ${secret.name}${secret.hosts.length === 0 ? '' : ` for ${secret.hosts.join(', ')}`}; runs get it with --secret ${secret.name}.`);
    });

  secrets
    .command('list')
    .description('your secrets: name, hosts, created, updated, last used (never a value)')
    .action(async (_options: unknown, command: Command) => {
      const result = await (await io.api(command)).request<{ secrets: SecretView[] }>('GET', '/secrets');
      io.print(command, result, () =>
        result.secrets.length === 0 ? 'No secrets yet: add one with "forgelink secrets set NAME".' : result.secrets.map(secretLine).join('\n'),
      );
    });

  secrets
    .command('delete <NAME>')
    .description('delete a secret')
    .action(async (name: string, _options: unknown, command: Command) => {
      await checkedName(name);
      await (await io.api(command)).request('DELETE', `/secrets/${encodeURIComponent(name)}`);
      io.print(command, { name, deleted: true }, () => `Deleted ${name}.`);
    });
}
