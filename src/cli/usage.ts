import type { Command, CommanderError } from 'commander';

/** What the CLI prints for a failure: one line, and with `--json` the same as `{"error":{…}}`. */
export type CliFailure = { code: string; message: string; field?: string };

/** Every command below `root` with its path (`connections doctor`). */
function commandPaths(root: Command, prefix: string[] = []): { path: string[]; command: Command }[] {
  return root.commands.flatMap((command) => {
    const path = [...prefix, command.name()];
    return [{ path, command }, ...commandPaths(command, path)];
  });
}

/** Edits from `a` to `b`, two adjacent letters swapped counting as one (`shwo` is one typo from `show`). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const above = rows[i - 1] as number[];
      let best = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = best;
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** The command the words before the unknown one lead to, e.g. `connections` for `connections lst`. */
function parentOf(program: Command, args: readonly string[], unknown: string): Command {
  let current = program;
  for (const arg of args) {
    if (arg === unknown) break;
    const next = current.commands.find((command) => command.name() === arg || command.aliases().includes(arg));
    if (next !== undefined) current = next;
  }
  return current;
}

/**
 * Commands a mistyped or misplaced name may have meant: under the same parent first (`connections lst` →
 * `connections list`), then anywhere with that very name (`doctor` → `connections doctor`), then close names anywhere.
 */
export function suggestCommands(program: Command, args: readonly string[], unknown: string): string[] {
  const all = commandPaths(program).filter(({ command }) => command.name() !== 'help');
  const parent = parentOf(program, args, unknown);
  const close = (name: string) => editDistance(name, unknown) <= Math.max(1, Math.floor(unknown.length / 3));
  const siblings = parent.commands.filter((command) => close(command.name())).map((command) => command);
  const paths = (commands: Command[]) => all.filter(({ command }) => commands.includes(command)).map(({ path }) => path.join(' '));
  if (siblings.length > 0) return paths(siblings);
  const exact = all.filter(({ command }) => command.name() === unknown).map(({ path }) => path.join(' '));
  if (exact.length > 0) return exact;
  return all.filter(({ command }) => close(command.name())).map(({ path }) => path.join(' '));
}

/** A command's words below the root (`admin user`); empty for the root. */
function groupPath(command: Command): string {
  const words: string[] = [];
  for (let current: Command | null = command; current?.parent; current = current.parent) words.unshift(current.name());
  return words.join(' ');
}

function snakeCase(text: string): string {
  return text.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** A commander usage error as one line, with a suggestion where one fits. */
export function usageError(program: Command, argv: readonly string[], error: CommanderError): CliFailure {
  const [first = '', ...rest] = error.message.replace(/^error: /, '').split('\n');
  const code = snakeCase(error.code.replace(/^commander\./, ''));
  const commanderHint = /\(Did you mean (.+)\?\)/.exec(rest.join(' '))?.[1];
  const field = /'(--?[\w-]+)/.exec(first)?.[1] ?? /argument '([\w-]+)'/.exec(first)?.[1];
  let hint = commanderHint === undefined ? '' : ` — did you mean ${commanderHint}?`;
  if (error.code === 'commander.unknownCommand') {
    const unknown = /'([^']*)'/.exec(first)?.[1] ?? '';
    const suggestions = suggestCommands(program, argv.slice(2), unknown);
    const group = groupPath(parentOf(program, argv.slice(2), unknown));
    hint =
      suggestions.length > 0
        ? ` — did you mean ${suggestions.map((name) => `'${name}'`).join(' or ')}?`
        : group === ''
          ? ' (run "forgelink --help" for the commands)'
          : ` (run "forgelink ${group} --help" for its commands)`;
  }
  const help = hint === '' && error.code !== 'commander.unknownCommand' ? ' (add --help for usage)' : '';
  return { code, message: `${first}${hint}${help}`, ...(field === undefined ? {} : { field }) };
}
