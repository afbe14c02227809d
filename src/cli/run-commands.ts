import type { Command } from 'commander';
import type { RunLogEntry } from '../core/index.ts';
import type { RunView } from '../runs/index.ts';
import { CliError, type ApiClient } from './api-client.ts';
import type { CliContext, CliIo } from './context.ts';
import { followRun } from './follow.ts';
import { runDetails, runsTable } from './format.ts';

type RunOptions = { connection: string; project: string; branch?: string; agent?: string; allowHost: string[]; secret: string[]; image?: string; timeout?: string; credentials?: string; tags: boolean; merge: boolean; readOtherProjects: boolean; detach?: boolean; depth?: string; filter?: string };

const runPath = (id: string, rest = '') => `/runs/${encodeURIComponent(id)}${rest}`;

function writeEntry(io: CliIo, entry: RunLogEntry): void {
  io.stderr.write(entry.stream === 'system' ? `forgelink: ${entry.text}` : entry.text);
}

function parseLimit(text: string, max: number): number {
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > max) throw new CliError(`--limit: expected a whole number from 1 to ${max}`);
  return limit;
}

/** The server checks these too; checking here names the flag and needs no round trip. */
async function checkRunInput(command: string[], options: RunOptions, takesTask: boolean): Promise<void> {
  const { branchNameProblem, projectPathProblem } = await import('../core/index.ts');
  const projectProblem = projectPathProblem(options.project.trim());
  if (projectProblem !== null) throw new CliError(`--project: "${options.project}" ${projectProblem}`, { field: '--project' });
  const branchProblem = options.branch === undefined || options.branch.trim() === '' ? null : branchNameProblem(options.branch.trim());
  if (branchProblem !== null) throw new CliError(`--branch: "${options.branch}" is not a valid branch name: it ${branchProblem}`, { field: '--branch' });
  if (options.credentials !== undefined && !['brokered', 'direct'].includes(options.credentials)) {
    throw new CliError(`--credentials: expected brokered or direct, not "${options.credentials}"`, { field: '--credentials' });
  }
  if (takesTask) {
    if (command.join(' ').trim() === '') throw new CliError('task: The task is empty.', { field: 'task' });
    return;
  }
  const { commandProblem } = await import('../runs/index.ts');
  const problem = commandProblem(command);
  if (problem !== null) throw new CliError(`command: ${problem}`, { field: 'command' });
}

/** `--no-tags`, `--no-merge`, `--no-read-other-projects` as `POST /runs`'s `policy`; nothing when none is given. */
function runPolicy(options: RunOptions): { policy?: { allowTags?: false; allowMerge?: false; readOtherProjects?: false } } {
  const policy = {
    ...(options.tags === false ? { allowTags: false as const } : {}),
    ...(options.merge === false ? { allowMerge: false as const } : {}),
    ...(options.readOtherProjects === false ? { readOtherProjects: false as const } : {}),
  };
  return Object.keys(policy).length === 0 ? {} : { policy };
}

function cloneDepth(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const depth = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(depth) || depth < 1 || depth > 2 ** 31 - 1) {
    throw new CliError(`--depth: "${text}" is not a whole number of commits, 1 or more`, { field: '--depth' });
  }
  return depth;
}

async function timeoutSeconds(text: string | undefined): Promise<number | undefined> {
  if (text === undefined) return undefined;
  const { parseDuration } = await import('../runs/index.ts');
  const parsed = parseDuration(text);
  if (parsed === null || parsed <= 0) throw new CliError(`--timeout: "${text}" is not a duration like 90s, 30m or 2h`, { field: '--timeout' });
  return parsed;
}

/** Streams the run's log to stderr until it ends; Ctrl-C asks the server to cancel it, a second one leaves at once. */
async function followToEnd(io: CliIo, client: ApiClient, id: string): Promise<RunView> {
  io.stderr.write(`forgelink: run ${id} queued\n`);
  const onInterrupt = () => {
    process.off('SIGINT', onInterrupt);
    io.stderr.write(`\nforgelink: canceling run ${id} (Ctrl-C again to leave it running)\n`);
    void client.request('POST', runPath(id, '/cancel')).catch(() => {});
  };
  process.on('SIGINT', onInterrupt);
  try {
    return await followRun(client, id, (entry) => writeEntry(io, entry));
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

function addRunCommand(program: Command, cli: CliContext): void {
  program
    .command('run')
    .description('run an agent (a profile with a task, or your own command) on a GitLab project in a sandbox; streams its log to stderr')
    .requiredOption('--connection <id>', 'connection whose token the agent gets as GITLAB_TOKEN')
    .requiredOption('--project <path|id>', 'project path (group/sub/app) or numeric id')
    .option('--branch <b>', 'branch to clone (default: the project\'s default branch)')
    .option('--agent <profile>', 'agent profile (forgelink agents list); the argument is then its task')
    .option('--allow-host <h>', 'extra host[:port] the sandbox may reach, where the operator permits (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--timeout <dur>', 'wall-clock limit, e.g. 90s, 30m, 2h (default: the server\'s)')
    .option('--secret <NAME>', 'one of your secrets (forgelink secrets set) the agent gets as an environment variable (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--depth <n>', 'clone only the last n commits of history (git clone --depth)')
    .option('--filter <spec>', 'partial clone; blob:none fetches file contents only as they are needed (git clone --filter)')
    .option('--credentials <mode>', 'brokered (surrogates in the sandbox, the broker swaps in the real ones) or direct (the real token); default: the server\'s')
    .option('--no-tags', 'run policy: no pushing or creating tags, even where the operator and the connection allow it')
    .option('--no-merge', 'run policy: no merging or approving merge requests, even where the operator and the connection allow it')
    .option('--no-read-other-projects', 'run policy: no reading projects other than its own, even where the operator and the connection allow it')
    .option('--image <ref>', 'root filesystem: host, oci:<dir>[:<tag>], oci-archive:<file>, docker-archive:<file>, docker://<registry>/<name>:<tag> (default: the profile\'s)')
    .option('--detach', 'print the run id and return at once')
    .argument('<task-or-command...>', 'with --agent: the task; without: the agent command, after --')
    .addHelpText(
      'after',
      '\nExamples:\n  forgelink run --agent claude-code --connection con_… --project group/app "fix the failing test"\n  forgelink run --connection con_… --project group/app -- ./my-agent --go',
    )
    .action(async (words: string[], options: RunOptions, cmd: Command) => {
      const agent = options.agent?.trim();
      const takesTask = agent !== undefined && agent !== 'custom';
      await checkRunInput(words, options, takesTask);
      const timeout = await timeoutSeconds(options.timeout);
      const depth = cloneDepth(options.depth);
      if (options.filter !== undefined && options.filter.trim() !== 'blob:none') {
        throw new CliError(`--filter: "${options.filter}" is not supported; use blob:none`, { field: '--filter' });
      }
      const client = await cli.api(cmd);
      const started = await client.request<RunView>('POST', '/runs', {
        connectionId: options.connection,
        project: options.project,
        ...(takesTask ? { agent, task: words.join(' ') } : { command: words, ...(agent === undefined ? {} : { agent }) }),
        ...(options.branch === undefined ? {} : { branch: options.branch }),
        ...(options.allowHost.length === 0 ? {} : { allowHosts: options.allowHost }),
        ...(timeout === undefined ? {} : { timeoutSeconds: timeout }),
        ...(options.secret.length === 0 ? {} : { secrets: options.secret }),
        ...(depth === undefined ? {} : { depth }),
        ...(options.filter === undefined ? {} : { filter: options.filter.trim() }),
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
        ...runPolicy(options),
        ...(options.image === undefined ? {} : { image: options.image }),
      });
      if (options.detach) {
        cli.print(cmd, started, () => started.id);
        return;
      }
      const finished = await followToEnd(cli.io, client, started.id);
      cli.print(cmd, finished, () => runDetails(finished));
      if (finished.status !== 'succeeded') cli.exitCode = 1;
    });
}

function addRunsGroup(program: Command, cli: CliContext): void {
  const runs = program.command('runs').description('your runs: list, show, logs, cancel');
  runs
    .command('list')
    .description('your runs, newest first: status, project, outputs, command')
    .option('--limit <n>', 'how many', '50')
    .action(async (options: { limit: string }, cmd: Command) => {
      const limit = parseLimit(options.limit, 500);
      const result = await (await cli.api(cmd)).request<{ runs: RunView[] }>('GET', `/runs?limit=${limit}`);
      cli.print(cmd, result, () => (result.runs.length === 0 ? 'No runs yet.' : runsTable(result.runs)));
    });
  runs
    .command('show <id>')
    .description('a run with its outputs: branches, merge requests, issues')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const run = await (await cli.api(cmd)).request<RunView>('GET', runPath(id));
      cli.print(cmd, run, () => runDetails(run));
    });
  runs
    .command('logs <id>')
    .description('print a run\'s log (scrubbed of its secrets)')
    .option('-f, --follow', 'keep printing until the run ends')
    .action(async (id: string, options: { follow?: boolean }, cmd: Command) => {
      const client = await cli.api(cmd);
      if (options.follow) {
        await followRun(client, id, (entry) => cli.io.stdout.write(entry.text));
        return;
      }
      const result = await client.request<{ entries: RunLogEntry[] }>('GET', runPath(id, '/log'));
      cli.print(cmd, result, () => result.entries.map((entry) => entry.text).join('').replace(/\n$/, ''));
    });
  runs
    .command('cancel <id>')
    .description('stop a queued or running run')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const run = await (await cli.api(cmd)).request<RunView>('POST', runPath(id, '/cancel'));
      cli.print(cmd, run, () => `Canceling run ${run.id}.`);
    });
}

/** `run` and `runs …`. */
export function addRunCommands(program: Command, cli: CliContext): void {
  addRunCommand(program, cli);
  addRunsGroup(program, cli);
}
