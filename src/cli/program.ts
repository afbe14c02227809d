import { readFile } from 'node:fs/promises';
import { Command, CommanderError } from 'commander';
import { branchNameProblem, projectPathProblem, type AuditEntry, type ConnectionView, type Project, type RunLogEntry } from '../core/index.ts';
import { commandProblem, parseDuration, type RunView } from '../runs/index.ts';
import { CliError, createApiClient, type ApiClient } from './api-client.ts';
import { loginFile, readLogin, writeLogin } from './client-config.ts';
import { auditLine, connectionDetails, connectionEventsText, connectionLine, doctorText, projectLine, runDetails, runLine } from './format.ts';
import type { ConnectionEventView, DoctorReport } from '../connections/index.ts';
import { followRun } from './follow.ts';
import { promptSecret, readStdin } from './input.ts';
import { addRotationCommands } from './rotation-commands.ts';
import { addAgentCommands } from './agent-commands.ts';
import { addAdminKeyCommand, addKeyCommands, type IssuedApiKey } from './keys-commands.ts';

/** What only the local process can do: serve, and admin commands on the data dir. Wired by main.ts. */
export type LocalActions = {
  /** `newMasterKey`: start even when the master key cannot open the secrets the database holds. */
  serve(options: { newMasterKey: boolean }): Promise<void>;
  addUser(name: string, isAdmin: boolean, password?: string): Promise<{ id: string; name: string; isAdmin: boolean; apiKey: string }>;
  /** Sets a user's dashboard password and ends their sessions. */
  setPassword(name: string, password: string): Promise<{ name: string; sessionsEnded: number }>;
  listUsers(): Promise<{ id: string; name: string; isAdmin: boolean; createdAt: string }[]>;
  rotateKey(options: { resealOnly: boolean }): Promise<{ keyId: string; resealed: number; total: number; failed: string[]; remaining: number }>;
  /** A new API key for the named user (`name`: the key's; a dated default when absent). */
  issueKey(user: string, name: string | undefined): Promise<IssuedApiKey>;
};

type Env = Readonly<Record<string, string | undefined>>;
type Globals = { json?: boolean; server?: string };

const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** A password from stdin (its one trailing newline dropped; spaces are kept), or a hidden prompt asked twice. */
async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) return (await readStdin()).replace(/\r?\n$/, '');
  const first = await promptSecret('New password: ');
  if ((await promptSecret('Repeat it: ')) !== first) throw new CliError('the two passwords differ; nothing was changed');
  return first;
}

/** Builds the `forgelink` command tree. */
export function buildProgram(local: LocalActions, env: Env = process.env): Command {
  const program = new Command('forgelink')
    .description('Let AI coding agents work on GitLab repositories safely.')
    .option('--json', 'print one JSON document on stdout')
    .option('--server <url>', `forgelink server to talk to (default: FORGELINK_SERVER, then "forgelink login", then ${DEFAULT_SERVER})`)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const globals = (command: Command) => command.optsWithGlobals<Globals>();
  const print = (command: Command, value: unknown, human: () => string) => {
    process.stdout.write(globals(command).json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
  };
  const api = async (command: Command): Promise<ApiClient> => {
    const stored = await readLogin(loginFile(env));
    const server = globals(command).server ?? env.FORGELINK_SERVER?.trim() ?? stored?.server ?? DEFAULT_SERVER;
    const apiKey = env.FORGELINK_API_KEY?.trim() || (stored && stored.server === server ? stored.apiKey : null) || null;
    return createApiClient(server, apiKey);
  };

  program
    .command('serve')
    .description('run the HTTP API (configuration from the environment; see README)')
    .option(
      '--new-master-key',
      'start even though the master key cannot open the secrets the database holds (a lost master.key): a new key is ' +
        'generated if none is given, and connections whose tokens cannot be opened must be reconnected',
    )
    .action((options: { newMasterKey?: boolean }) => local.serve({ newMasterKey: options.newMasterKey === true }));

  const admin = program.command('admin').description('local administration on this machine\'s data directory');
  const user = admin.command('user').description('manage users');
  user
    .command('add <name>')
    .description('create a user and print their API key once')
    .option('--admin', 'make the user an administrator')
    .option('--password-stdin', 'also set their dashboard password, read from stdin')
    .action(async (name: string, options: { admin?: boolean; passwordStdin?: boolean }, command: Command) => {
      const password = options.passwordStdin ? await readPassword(true) : undefined;
      const created = await local.addUser(name, options.admin === true, password);
      print(command, created, () =>
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
      const result = await local.setPassword(name, await readPassword(false));
      print(command, result, () => `Password set for ${result.name}; ${result.sessionsEnded} dashboard session(s) ended.`);
    });
  user
    .command('list')
    .description('list users')
    .action(async (_options: unknown, command: Command) => {
      const users = await local.listUsers();
      print(command, { users }, () =>
        users.length === 0 ? 'No users yet.' : users.map((u) => `${u.id}  ${u.name}${u.isAdmin ? '  admin' : ''}`).join('\n'),
      );
    });
  addAdminKeyCommand(user, { issueKey: (name, keyName) => local.issueKey(name, keyName), print });
  admin
    .command('rotate-key')
    .description('add a new master key version and re-seal every stored secret with it')
    .option('--reseal-only', 'do not add a key version; re-seal secrets still under an older one')
    .action(async (options: { resealOnly?: boolean }, command: Command) => {
      const result = await local.rotateKey({ resealOnly: options.resealOnly === true });
      print(command, result, () =>
        [
          `Master key is now ${result.keyId}; re-sealed ${result.resealed} of ${result.total} secret(s). Older key versions stay readable.`,
          ...(result.failed.length > 0 ? [`Could not open ${result.failed.length} secret(s): ${result.failed.join(', ')}`] : []),
        ].join('\n'),
      );
      if (result.failed.length > 0) process.exitCode = 1;
    });

  program
    .command('login')
    .description('store the server URL (--server) and your API key (read from stdin) for later commands')
    .action(async (_options: unknown, command: Command) => {
      const server = (globals(command).server ?? env.FORGELINK_SERVER ?? DEFAULT_SERVER).replace(/\/+$/, '');
      const apiKey = (await promptSecret('API key: ')).trim();
      if (apiKey === '') throw new CliError('no API key given on stdin');
      const me = await createApiClient(server, apiKey).request<{ id: string; name: string }>('GET', '/me');
      const file = loginFile(env);
      await writeLogin(file, { server, apiKey });
      print(command, { server, user: me }, () => `Logged in to ${server} as ${me.name}; saved to ${file}.`);
    });

  const connect = program.command('connect').description('connect an account');
  connect
    .command('gitlab')
    .description('connect a GitLab account with a personal, project or group access token')
    .option('--url <base>', 'GitLab instance URL (default: GITLAB_OAUTH_BASE_URL, then https://gitlab.com)')
    .option('--token-stdin', 'read the token from stdin (otherwise GITLAB_TOKEN, otherwise a prompt)')
    .option('--ca-file <pem>', 'PEM file with the instance\'s private certificate authority')
    .option('--label <text>', 'a name for this connection')
    .addHelpText(
      'after',
      '\nThe token is never taken from an argument (it would show in the process list).\n' +
        'Recommended scopes: read_repository + write_repository for an agent that clones and pushes;\n' +
        'api + read_user for a dedicated bot account. Always set an expiry date.',
    )
    .action(async (options: { url?: string; tokenStdin?: boolean; caFile?: string; label?: string }, command: Command) => {
      const client = await api(command);
      const token = options.tokenStdin
        ? await readStdin()
        : env.GITLAB_TOKEN !== undefined && env.GITLAB_TOKEN !== ''
          ? env.GITLAB_TOKEN
          : await promptSecret('GitLab token: ');
      let caPem: string | undefined;
      if (options.caFile !== undefined) {
        try {
          caPem = await readFile(options.caFile, 'utf8');
        } catch (error) {
          throw new CliError(`--ca-file: cannot read ${options.caFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
        }
      }
      const baseUrl = options.url ?? (env.GITLAB_OAUTH_BASE_URL?.trim() || undefined);
      const connection = await client.request<ConnectionView>('POST', '/connections', {
        token,
        ...(baseUrl === undefined ? {} : { baseUrl }),
        ...(caPem === undefined ? {} : { caPem }),
        ...(options.label === undefined ? {} : { label: options.label }),
      });
      print(command, connection, () => `Connected.\n${connectionDetails(connection, new Date())}`);
    });

  const connections = program.command('connections').description('list, show and check connections');
  connections
    .command('list')
    .description('list your connections')
    .action(async (_options: unknown, command: Command) => {
      const result = await (await api(command)).request<{ connections: ConnectionView[] }>('GET', '/connections');
      print(command, result, () =>
        result.connections.length === 0
          ? 'No connections yet: run "forgelink connect gitlab".'
          : result.connections.map((connection) => connectionLine(connection, new Date())).join('\n'),
      );
    });
  connections
    .command('show <id>')
    .description('show one connection: account, scopes, expiry, what an agent can do, warnings, recent status changes')
    .action(async (id: string, _options: unknown, command: Command) => {
      const client = await api(command);
      const connection = await client.request<ConnectionView>('GET', `/connections/${encodeURIComponent(id)}`);
      // --json prints the connection as the API returns it (docs/contract.md); the history is for people.
      const events = globals(command).json
        ? []
        : (await client.request<{ events: ConnectionEventView[] }>('GET', `/connections/${encodeURIComponent(id)}/events?limit=5`)).events;
      print(command, connection, () => `${connectionDetails(connection, new Date())}\n${connectionEventsText(events)}`);
    });
  connections
    .command('check <id>')
    .description('re-validate a connection against GitLab now')
    .action(async (id: string, _options: unknown, command: Command) => {
      const connection = await (await api(command)).request<ConnectionView>(
        'POST',
        `/connections/${encodeURIComponent(id)}/check`,
      );
      print(command, connection, () => connectionDetails(connection, new Date()));
      if (connection.status !== 'active') process.exitCode = 1;
    });

  addRotationCommands(connections, { api, print });
  addKeyCommands(program, { api, print, json: (command) => globals(command).json === true });
  addAgentCommands(program, { api, print });

  connections
    .command('doctor <id>')
    .description('diagnose a connection step by step: DNS, TCP, TLS, GitLab, subpath, token, %2F, clone URL, egress, clock')
    .action(async (id: string, _options: unknown, command: Command) => {
      const report = await (await api(command)).request<DoctorReport>('POST', `/connections/${encodeURIComponent(id)}/doctor`);
      print(command, report, () => doctorText(report));
      if (!report.ok) process.exitCode = 1;
    });

  program
    .command('audit')
    .description('what happened to your connections and runs: token decryptions (who, which, why), checks, disconnects, runs')
    .option('--connection <id>', 'only entries about this connection')
    .option('--limit <n>', 'how many, newest first', '100')
    .action(async (options: { connection?: string; limit: string }, command: Command) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError('--limit: expected a whole number from 1 to 1000');
      const query = new URLSearchParams({ limit: String(limit), ...(options.connection === undefined ? {} : { connectionId: options.connection }) });
      const result = await (await api(command)).request<{ entries: AuditEntry[] }>('GET', `/audit?${query.toString()}`);
      print(command, result, () => (result.entries.length === 0 ? 'No audit entries.' : result.entries.map(auditLine).join('\n')));
    });

  program
    .command('disconnect <id>')
    .description('delete a connection and its stored token')
    .action(async (id: string, _options: unknown, command: Command) => {
      await (await api(command)).request('DELETE', `/connections/${encodeURIComponent(id)}`);
      print(command, { id, disconnected: true }, () => `Disconnected ${id}; its token was deleted from forgelink.`);
    });

  program
    .command('projects <connection-id>')
    .description('list the projects the connection has Developer access or more to')
    .option('--search <q>', 'only projects matching this text')
    .action(async (id: string, options: { search?: string }, command: Command) => {
      const query = options.search === undefined ? '' : `?search=${encodeURIComponent(options.search)}`;
      const result = await (await api(command)).request<{ projects: Project[] }>(
        'GET',
        `/connections/${encodeURIComponent(id)}/projects${query}`,
      );
      print(command, result, () =>
        result.projects.length === 0 ? 'No projects with Developer access or more.' : result.projects.map(projectLine).join('\n'),
      );
    });

  const writeEntry = (entry: RunLogEntry) => {
    process.stderr.write(entry.stream === 'system' ? `forgelink: ${entry.text}` : entry.text);
  };

  program
    .command('run')
    .description('run an agent (a profile with a task, or your own command) on a GitLab project in a sandbox; streams its log to stderr')
    .requiredOption('--connection <id>', 'connection whose token the agent gets as GITLAB_TOKEN')
    .requiredOption('--project <path|id>', 'project path (group/sub/app) or numeric id')
    .option('--branch <b>', 'branch to clone (default: the project\'s default branch)')
    .option('--agent <profile>', 'agent profile (forgelink agents list); the argument is then its task')
    .option('--allow-host <h>', 'extra host[:port] the sandbox may reach, where the operator permits (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--timeout <dur>', 'wall-clock limit, e.g. 90s, 30m, 2h (default: the server\'s)')
    .option('--detach', 'print the run id and return at once')
    .argument('<task-or-command...>', 'with --agent: the task; without: the agent command, after --')
    .addHelpText(
      'after',
      '\nExamples:\n  forgelink run --agent claude-code --connection con_… --project group/app "fix the failing test"\n  forgelink run --connection con_… --project group/app -- ./my-agent --go',
    )
    .action(async (words: string[], options: { connection: string; project: string; branch?: string; agent?: string; allowHost: string[]; timeout?: string; detach?: boolean }, cmd: Command) => {
      const agent = options.agent?.trim();
      const takesTask = agent !== undefined && agent !== 'custom';
      const command = takesTask ? [] : words;
      // The server checks these too; checking here names the flag and needs no round trip.
      const projectProblem = projectPathProblem(options.project.trim());
      if (projectProblem !== null) throw new CliError(`--project: "${options.project}" ${projectProblem}`);
      const branchProblem = options.branch === undefined || options.branch.trim() === '' ? null : branchNameProblem(options.branch.trim());
      if (branchProblem !== null) throw new CliError(`--branch: "${options.branch}" is not a valid branch name: it ${branchProblem}`);
      const problem = takesTask ? (words.join(' ').trim() === '' ? 'The task is empty.' : null) : commandProblem(command);
      if (problem !== null) throw new CliError(`${takesTask ? 'task' : 'command'}: ${problem}`);
      let timeoutSeconds: number | undefined;
      if (options.timeout !== undefined) {
        const parsed = parseDuration(options.timeout);
        if (parsed === null || parsed <= 0) throw new CliError(`--timeout: "${options.timeout}" is not a duration like 90s, 30m or 2h`);
        timeoutSeconds = parsed;
      }
      const client = await api(cmd);
      const started = await client.request<RunView>('POST', '/runs', {
        connectionId: options.connection,
        project: options.project,
        ...(takesTask ? { agent, task: words.join(' ') } : { command, ...(agent === undefined ? {} : { agent }) }),
        ...(options.branch === undefined ? {} : { branch: options.branch }),
        ...(options.allowHost.length === 0 ? {} : { allowHosts: options.allowHost }),
        ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
      });
      if (options.detach) {
        print(cmd, started, () => started.id);
        return;
      }
      process.stderr.write(`forgelink: run ${started.id} queued\n`);
      // Ctrl-C asks the server to cancel the run; a second one leaves at once.
      const onInterrupt = () => {
        process.off('SIGINT', onInterrupt);
        process.stderr.write(`\nforgelink: canceling run ${started.id} (Ctrl-C again to leave it running)\n`);
        void client.request('POST', `/runs/${started.id}/cancel`).catch(() => {});
      };
      process.on('SIGINT', onInterrupt);
      const finished = await followRun(client, started.id, writeEntry);
      process.off('SIGINT', onInterrupt);
      print(cmd, finished, () => runDetails(finished));
      if (finished.status !== 'succeeded') process.exitCode = 1;
    });

  const runs = program.command('runs').description('list, show, follow and cancel runs');
  runs
    .command('list')
    .description('your runs, newest first')
    .option('--limit <n>', 'how many', '50')
    .action(async (options: { limit: string }, cmd: Command) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CliError('--limit: expected a whole number from 1 to 500');
      const result = await (await api(cmd)).request<{ runs: RunView[] }>('GET', `/runs?limit=${limit}`);
      print(cmd, result, () => (result.runs.length === 0 ? 'No runs yet.' : result.runs.map(runLine).join('\n')));
    });
  runs
    .command('show <id>')
    .description('a run with its outputs: branches, merge requests, issues')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const run = await (await api(cmd)).request<RunView>('GET', `/runs/${encodeURIComponent(id)}`);
      print(cmd, run, () => runDetails(run));
    });
  runs
    .command('logs <id>')
    .description('print a run\'s log (scrubbed of its secrets)')
    .option('-f, --follow', 'keep printing until the run ends')
    .action(async (id: string, options: { follow?: boolean }, cmd: Command) => {
      const client = await api(cmd);
      if (options.follow) {
        await followRun(client, id, (entry) => process.stdout.write(entry.text));
        return;
      }
      const result = await client.request<{ entries: RunLogEntry[] }>('GET', `/runs/${encodeURIComponent(id)}/log`);
      print(cmd, result, () => result.entries.map((entry) => entry.text).join('').replace(/\n$/, ''));
    });
  runs
    .command('cancel <id>')
    .description('stop a queued or running run')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const run = await (await api(cmd)).request<RunView>('POST', `/runs/${encodeURIComponent(id)}/cancel`);
      print(cmd, run, () => `Canceling run ${run.id}.`);
    });

  return program;
}

/** Runs the CLI; returns the exit code. Failures print one line on stderr. */
export async function runCli(argv: string[], local: LocalActions, env: Env = process.env): Promise<number> {
  const program = buildProgram(local, env);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed help, version or the usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`forgelink: ${message.split('\n')[0]}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}
