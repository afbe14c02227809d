import { readFileSync } from 'node:fs';
import { Command, CommanderError, Help, type Option } from 'commander';
import type { AuditEntry } from '../core/index.ts';
import { CliError, createApiClient } from './api-client.ts';
import { loginFile, writeLogin } from './client-config.ts';
import { addConnectionCommands } from './connection-commands.ts';
import { checkedServer, createContext, DEFAULT_SERVER, processIo, type CliContext, type CliIo, type Env, type LoadLocalActions } from './context.ts';
import { auditLine } from './format.ts';
import { promptSecret } from './input.ts';
import { addKeyCommands } from './keys-commands.ts';
import { addSecretCommands } from './secret-commands.ts';
import { addAgentCommands } from './agent-commands.ts';
import { addImageCommands } from './image-commands.ts';
import { addWorkerCommands } from './worker-commands.ts';
import { addAdminCommands, addServeCommand } from './local-commands.ts';
import { addCacheCommands } from './cache-commands.ts';
import { addRunCommands } from './run-commands.ts';
import { usageError, type CliFailure } from './usage.ts';

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

/** The root command: global options, `--version`, and usage errors left to `runCli` to print in one line. */
function createRootCommand(io: CliIo): Command {
  return new Command('forgelink')
    .description('Let AI coding agents work on GitLab repositories safely.')
    .version(version(), '-V, --version', 'print the version')
    .option('--json', 'print one JSON document on stdout (on failure, {"error":{…}} as well)')
    .option('--server <url>', `forgelink server to talk to (default: FORGELINK_SERVER, then "forgelink login", then ${DEFAULT_SERVER})`)
    // Every subcommand's help lists --json and --server under "Global Options" (commands inherit this setting),
    // except one the command has its own of (login's --server).
    .configureHelp({
      showGlobalOptions: true,
      visibleGlobalOptions(command: Command): Option[] {
        const own = new Set(command.options.map((option) => option.long));
        return Help.prototype.visibleGlobalOptions.call(this, command).filter((option) => !own.has(option.long));
      },
    })
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text), outputError: () => {} })
    .exitOverride();
}

function addLoginCommand(program: Command, cli: CliContext): void {
  program
    .command('login')
    .description('store the server URL and your API key (read from stdin or a hidden prompt) for later commands')
    .option('--server <url>', `the forgelink server, http:// or https:// (default: FORGELINK_SERVER, then ${DEFAULT_SERVER})`)
    .action(async (_options: unknown, command: Command) => {
      const flag = command.optsWithGlobals<{ server?: string }>().server;
      const server = flag !== undefined ? checkedServer(flag, '--server') : checkedServer(cli.env.FORGELINK_SERVER?.trim() || DEFAULT_SERVER, 'FORGELINK_SERVER');
      const apiKey = (await promptSecret(cli.io, 'API key: ')).trim();
      if (apiKey === '') throw new CliError('no API key given on stdin');
      const me = await createApiClient(server, apiKey).request<{ id: string; name: string }>('GET', '/me');
      const file = loginFile(cli.env);
      await writeLogin(file, { server, apiKey });
      cli.print(command, { server, user: me }, () => `Logged in to ${server} as ${me.name}; saved to ${file}.`);
    });
}

function addAuditCommand(program: Command, cli: CliContext): void {
  program
    .command('audit')
    .description('what happened to your connections and runs: token decryptions (who, which, why), checks, disconnects, runs')
    .option('--connection <id>', 'only entries about this connection')
    .option('--limit <n>', 'how many, newest first', '100')
    .action(async (options: { connection?: string; limit: string }, command: Command) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError('--limit: expected a whole number from 1 to 1000', { field: '--limit' });
      const query = new URLSearchParams({ limit: String(limit), ...(options.connection === undefined ? {} : { connectionId: options.connection }) });
      const result = await (await cli.api(command)).request<{ entries: AuditEntry[] }>('GET', `/audit?${query.toString()}`);
      cli.print(command, result, () => (result.entries.length === 0 ? 'No audit entries.' : result.entries.map(auditLine).join('\n')));
    });
}

/** Builds the `forgelink` command tree from its groups. */
export function buildProgram(loadLocal: LoadLocalActions, env: Env = process.env, cli: CliContext = createContext(env, loadLocal)): Command {
  const program = createRootCommand(cli.io);
  addServeCommand(program, cli);
  addAdminCommands(program, cli);
  addCacheCommands(program, cli);
  addLoginCommand(program, cli);
  addConnectionCommands(program, cli);
  addKeyCommands(program, { api: cli.api, print: cli.print, json: cli.json });
  addSecretCommands(program, { api: cli.api, print: cli.print, io: cli.io });
  addAgentCommands(program, { api: cli.api, print: cli.print });
  addWorkerCommands(program, { api: cli.api, print: cli.print });
  addAuditCommand(program, cli);
  addRunCommands(program, cli);
  addImageCommands(program, cli);
  return program;
}

/** Whether `--json` is among the global options (before a `--` that starts an agent command). */
function wantsJson(argv: readonly string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

function fail(io: CliIo, failure: CliFailure, json: boolean): void {
  io.stderr.write(`forgelink: ${failure.message}\n`);
  if (json) {
    const error = { code: failure.code, message: failure.message, ...(failure.field === undefined ? {} : { field: failure.field }) };
    io.stdout.write(`${JSON.stringify({ error }, null, 2)}\n`);
  }
}

/**
 * Runs the CLI; returns the exit code. A failure prints one line on stderr starting with `forgelink:`; with
 * `--json` also `{"error":{"code","message","field"?}}` on stdout.
 */
export async function runCli(argv: string[], loadLocal: LoadLocalActions, env: Env = process.env, io: CliIo = processIo): Promise<number> {
  const cli = createContext(env, loadLocal, io);
  const program = buildProgram(loadLocal, env, cli);
  const json = wantsJson(argv);
  try {
    await program.parseAsync(argv);
    return cli.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version printed themselves; so did a group run without its subcommand (help on stderr).
      if (error.exitCode === 0 || error.code === 'commander.help') return error.exitCode;
      fail(io, usageError(program, argv, error), json);
      return 2;
    }
    if (error instanceof CliError) {
      fail(io, { code: error.code, message: error.message, ...(error.field === undefined ? {} : { field: error.field }) }, json);
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error);
    const code = typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'failed';
    const field = (error as { field?: unknown }).field;
    fail(io, { code, message, ...(typeof field === 'string' ? { field } : {}) }, json);
    return 1;
  }
}
