import type { Command } from 'commander';
import type { ApiKeyView, CreatedApiKey } from '../core/index.ts';
import type { ApiClient } from './api-client.ts';

type Print = (command: Command, value: unknown, human: () => string) => void;

type Io = {
  api(command: Command): Promise<ApiClient>;
  print: Print;
  /** Whether `--json` was given. */
  json(command: Command): boolean;
};

/** A key issued by `admin user key`, with whose it is. */
export type IssuedApiKey = CreatedApiKey & { user: { id: string; name: string } };

/** `2030-05-01T10:00:12.345Z` as `2030-05-01 10:00` (UTC), or `never`. */
function minute(iso: string | null): string {
  return iso === null ? 'never' : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

/** The keys as a table; `current` (the key this CLI uses) is marked. */
export function keysTable(keys: readonly ApiKeyView[], current: string | null): string {
  if (keys.length === 0) return 'No API keys: create one with "forgelink keys create <name>".';
  const rows = [
    ['ID', 'NAME', 'PREFIX', 'CREATED (UTC)', 'LAST USED (UTC)', ''],
    ...keys.map((key) => [key.id, key.name, `${key.prefix}…`, minute(key.createdAt), minute(key.lastUsedAt), key.id === current ? '(used by this CLI)' : '']),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => [...row[column]!].length)));
  return rows
    .map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd())
    .join('\n');
}

function createdText(created: CreatedApiKey, whose: string): string {
  return [`Created API key "${created.name}" (${created.id})${whose}.`, `API key (shown once, store it now): ${created.key}`].join('\n');
}

/** The id of the key the CLI authenticates with, from `GET /me`. */
async function currentKeyId(client: ApiClient): Promise<string | null> {
  return (await client.request<{ keyId?: string }>('GET', '/me')).keyId ?? null;
}

/** `forgelink keys create|list|revoke`: the caller's own API keys, over the API. */
export function addKeyCommands(program: Command, io: Io): void {
  const keys = program
    .command('keys')
    .description('create, list and revoke your API keys (the CLI, scripts and agent platforms sign in with them)');
  keys
    .command('create <name>')
    .description('create an API key and print it once: store it at once, it cannot be shown again')
    .addHelpText('after', '\nUse it with "forgelink login" (key on stdin) or FORGELINK_API_KEY, or as "Authorization: Bearer <key>".')
    .action(async (name: string, _options: unknown, command: Command) => {
      const created = await (await io.api(command)).request<CreatedApiKey>('POST', '/keys', { name });
      io.print(command, created, () => createdText(created, ''));
    });
  keys
    .command('list')
    .description('list your API keys that are not revoked: id, name, first characters, created, last used (to the minute)')
    .action(async (_options: unknown, command: Command) => {
      const client = await io.api(command);
      const result = await client.request<{ keys: ApiKeyView[] }>('GET', '/keys');
      const current = io.json(command) ? null : await currentKeyId(client);
      io.print(command, result, () => keysTable(result.keys, current));
    });
  keys
    .command('revoke <id>')
    .description('revoke an API key: anything using it is refused from its next request on')
    .addHelpText('after', '\nYou may revoke the key this CLI uses; then store another with "forgelink login".')
    .action(async (id: string, _options: unknown, command: Command) => {
      const client = await io.api(command);
      const own = (await currentKeyId(client)) === id;
      await client.request('DELETE', `/keys/${encodeURIComponent(id)}`);
      io.print(command, { id, revoked: true }, () =>
        own
          ? `Revoked ${id}. It was the key this CLI uses: store another with "forgelink login".`
          : `Revoked ${id}; it no longer works.`,
      );
    });
}

/** `forgelink admin user key <user>`: a new key for a user, made locally on the data directory. */
export function addAdminKeyCommand(user: Command, io: { issueKey(user: string, name: string | undefined): Promise<IssuedApiKey>; print: Print }): void {
  user
    .command('key <user>')
    .description('create a new API key for a user (one who lost theirs, say) and print it once')
    .option('--name <name>', 'what the key is for (default: "issued <date and time>")')
    .action(async (name: string, options: { name?: string }, command: Command) => {
      const issued = await io.issueKey(name, options.name);
      io.print(command, issued, () => createdText(issued, ` for ${issued.user.name}`));
    });
}
