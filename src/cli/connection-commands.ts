import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ConnectionEventView } from '../connections/index.ts';
import type { DoctorReport } from '../doctor/index.ts';
import { sameAccountConnections, type ConnectionView, type Project } from '../core/index.ts';
import { CliError, type ApiClient } from './api-client.ts';
import type { CliContext } from './context.ts';
import { connectionDetails, connectionEventsText, connectionLine, doctorText, projectLine } from './format.ts';
import { canAsk, confirm, promptSecret, readStdin } from './input.ts';
import { addRotationCommands } from './rotation-commands.ts';

type ConnectOptions = { url?: string; tokenStdin?: boolean; caFile?: string; label?: string; replace?: boolean };

const path = (id: string, rest = '') => `/connections/${encodeURIComponent(id)}${rest}`;

function accountName(connection: ConnectionView): string {
  return connection.account === null ? 'an unknown account' : `@${connection.account.username}`;
}

async function readToken(options: ConnectOptions, cli: CliContext): Promise<string> {
  if (options.tokenStdin) return readStdin(cli.io);
  const fromEnv = cli.env.GITLAB_TOKEN;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : promptSecret(cli.io, 'GitLab token: ');
}

async function readCaFile(file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined;
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const why =
      code === 'ENOENT' ? 'no such file'
      : code === 'EISDIR' ? 'it is a directory'
      : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
      // Node's own words without its code prefix and the repeated path: "ENOENT: no such file or directory, open '…'".
      : (message.replace(/^[A-Z]+: /, '').split(', ')[0] ?? message);
    throw new CliError(`--ca-file: cannot read ${file}: ${why}`, { code: 'invalid_ca_file', field: '--ca-file' });
  }
}

/** Other connections of the same GitLab account on the same instance as `connection`. */
async function sameAccount(client: ApiClient, connection: ConnectionView): Promise<ConnectionView[]> {
  if (connection.account === null) return [];
  const { connections } = await client.request<{ connections: ConnectionView[] }>('GET', '/connections');
  return sameAccountConnections(connection, connections);
}

/**
 * After a connect: an older connection of the same account is replaced (`--replace`, or yes on a terminal),
 * or named in a warning. The new one is stored first, so a failure here never leaves the user with neither.
 */
async function handleDuplicates(cli: CliContext, client: ApiClient, connection: ConnectionView, replace: boolean): Promise<string[]> {
  const replaced: string[] = [];
  for (const old of await sameAccount(client, connection)) {
    const about = `${accountName(connection)} on ${connection.baseUrl} is also connected as ${old.id} (${old.label})`;
    if (replace || (canAsk(cli.io) && (await confirm(cli.io, `${about}. Disconnect ${old.id}?`)))) {
      await client.request('DELETE', path(old.id));
      replaced.push(old.id);
      cli.io.stderr.write(`forgelink: disconnected ${old.id}, replaced by ${connection.id}\n`);
    } else {
      cli.io.stderr.write(`forgelink: warning: ${about}; "forgelink disconnect ${old.id}" removes it (or connect with --replace)\n`);
    }
  }
  return replaced;
}

function addConnectCommand(program: Command, cli: CliContext): void {
  const connect = program.command('connect').description('connect an account: gitlab');
  connect
    .command('gitlab')
    .description('connect a GitLab account with a personal, project or group access token')
    .option('--url <base>', 'GitLab instance URL (default: GITLAB_OAUTH_BASE_URL, then https://gitlab.com)')
    .option('--token-stdin', 'read the token from stdin (otherwise GITLAB_TOKEN, otherwise a prompt)')
    .option('--ca-file <pem>', 'PEM file with the instance\'s private certificate authority')
    .option('--label <text>', 'a name for this connection')
    .option('--replace', 'disconnect older connections of the same account on the same instance once this one is stored')
    .addHelpText(
      'after',
      '\nThe token is never taken from an argument (it would show in the process list).\n' +
        'Recommended scopes: read_repository + write_repository for an agent that clones and pushes;\n' +
        'api + read_user for a dedicated bot account. Always set an expiry date.\n' +
        'When the account is already connected on that instance, connect warns (on a terminal it offers to replace it).',
    )
    .action(async (options: ConnectOptions, command: Command) => {
      const client = await cli.api(command);
      const token = await readToken(options, cli);
      const caPem = await readCaFile(options.caFile);
      const baseUrl = options.url ?? (cli.env.GITLAB_OAUTH_BASE_URL?.trim() || undefined);
      const connection = await client.request<ConnectionView>('POST', '/connections', {
        token,
        ...(baseUrl === undefined ? {} : { baseUrl }),
        ...(caPem === undefined ? {} : { caPem }),
        ...(options.label === undefined ? {} : { label: options.label }),
      });
      const replaced = await handleDuplicates(cli, client, connection, options.replace === true);
      cli.print(command, { ...connection, ...(replaced.length === 0 ? {} : { replaced }) }, () =>
        [
          `Connected.\n${connectionDetails(connection, new Date())}`,
          `Next: forgelink projects ${connection.id}    (then: forgelink run --connection ${connection.id} --project <path> -- <command>)`,
        ].join('\n'),
      );
    });
}

function addListShowCheck(connections: Command, cli: CliContext): void {
  connections
    .command('list')
    .description('list your connections')
    .action(async (_options: unknown, command: Command) => {
      const result = await (await cli.api(command)).request<{ connections: ConnectionView[] }>('GET', '/connections');
      cli.print(command, result, () =>
        result.connections.length === 0
          ? 'No connections yet: run "forgelink connect gitlab".'
          : result.connections.map((connection) => connectionLine(connection, new Date())).join('\n'),
      );
    });
  connections
    .command('show <id>')
    .description('show one connection: account, scopes, expiry, what an agent can do, warnings, recent status changes')
    .action(async (id: string, _options: unknown, command: Command) => {
      const client = await cli.api(command);
      const connection = await client.request<ConnectionView>('GET', path(id));
      const { events } = await client.request<{ events: ConnectionEventView[] }>('GET', path(id, '/events?limit=5'));
      cli.print(command, { ...connection, statusHistory: events }, () => `${connectionDetails(connection, new Date())}\n${connectionEventsText(events)}`);
    });
  connections
    .command('check <id>')
    .description('re-validate a connection against GitLab now')
    .action(async (id: string, _options: unknown, command: Command) => {
      const connection = await (await cli.api(command)).request<ConnectionView>('POST', path(id, '/check'));
      cli.print(command, connection, () => connectionDetails(connection, new Date()));
      if (connection.status !== 'active') cli.exitCode = 1;
    });
  connections
    .command('doctor <id>')
    .description('diagnose a connection step by step: DNS, TCP, TLS, GitLab, subpath, token, %2F, clone URL, egress, clock')
    .action(async (id: string, _options: unknown, command: Command) => {
      const report = await (await cli.api(command)).request<DoctorReport>('POST', path(id, '/doctor'));
      cli.print(command, report, () => doctorText(report));
      if (!report.ok) cli.exitCode = 1;
    });
}

/** `forgelink connections …`: list, show, check, doctor, rotation, set, rotate. */
function addConnectionsGroup(program: Command, cli: CliContext): void {
  const connections = program
    .command('connections')
    .description('your GitLab connections: list, show, check, doctor, rotation, set, rotate');
  addListShowCheck(connections, cli);
  addRotationCommands(connections, { api: cli.api, print: cli.print });
}

function disconnectedText(connection: ConnectionView, result: { warnings?: { message: string }[] } | undefined): string {
  const gone = `Disconnected ${connection.id} (${accountName(connection)} on ${connection.host}); forgelink deleted its stored token.`;
  if (connection.kind === 'oauth') {
    const failed = result?.warnings?.[0];
    return failed === undefined ? `${gone} GitLab revoked the authorization.` : `${gone} GitLab did not confirm revoking the authorization: ${failed.message}`;
  }
  return `${gone}\nThe token stays valid at GitLab until you revoke it there: ${connection.baseUrl}/-/user_settings/personal_access_tokens`;
}

function addDisconnectCommand(program: Command, cli: CliContext): void {
  program
    .command('disconnect <id>')
    .description('delete a connection and its stored token (on a terminal, asks first)')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nWithout a terminal (a script, a pipe) it does not ask. A personal access token stays valid at GitLab until\n' +
        'you revoke it there; an OAuth authorization is revoked at GitLab.',
    )
    .action(async (id: string, options: { yes?: boolean }, command: Command) => {
      const client = await cli.api(command);
      const connection = await client.request<ConnectionView>('GET', path(id));
      if (!options.yes && canAsk(cli.io) && !(await confirm(cli.io, `Disconnect ${id} (${accountName(connection)} on ${connection.host}, "${connection.label}")?`))) {
        throw new CliError('nothing was disconnected');
      }
      const result = await client.request<{ warnings?: { code: string; message: string }[] } | undefined>('DELETE', path(id));
      cli.print(command, { id, disconnected: true, kind: connection.kind, ...(result?.warnings ? { warnings: result.warnings } : {}) }, () =>
        disconnectedText(connection, result),
      );
    });
}

function addProjectsCommand(program: Command, cli: CliContext): void {
  program
    .command('projects <connection-id>')
    .description('list the projects the connection has Developer access or more to')
    .option('--search <q>', 'only projects matching this text')
    .action(async (id: string, options: { search?: string }, command: Command) => {
      const query = options.search === undefined ? '' : `?search=${encodeURIComponent(options.search)}`;
      const result = await (await cli.api(command)).request<{ projects: Project[] }>('GET', path(id, `/projects${query}`));
      cli.print(command, result, () =>
        result.projects.length === 0 ? 'No projects with Developer access or more.' : result.projects.map(projectLine).join('\n'),
      );
    });
}

/** `connect`, `connections …`, `disconnect` and `projects`. */
export function addConnectionCommands(program: Command, cli: CliContext): void {
  addConnectCommand(program, cli);
  addConnectionsGroup(program, cli);
  addDisconnectCommand(program, cli);
  addProjectsCommand(program, cli);
}
