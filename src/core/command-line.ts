const NEEDS_QUOTING = /[^A-Za-z0-9_@%+=:,./-]/;

/**
 * An argv as one POSIX shell line that splits back into the same words (`sh -c 'env | sort'`): what the
 * dashboard, the run log and the CLI show, so a person reads exactly what ran.
 */
export function quoteCommandLine(argv: readonly string[]): string {
  return argv
    .map((arg) => (arg !== '' && !NEEDS_QUOTING.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`))
    .join(' ');
}

/** The command line cut to `max` characters with an ellipsis, for one-line listings. */
export function shortCommandLine(argv: readonly string[], max: number): string {
  const line = quoteCommandLine(argv);
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}
