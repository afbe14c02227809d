import { InputError } from '../../core/index.ts';

export { quoteCommandLine } from '../../core/index.ts';

/**
 * The dashboard takes the agent command as one line, split the way a POSIX shell splits words — quotes
 * and backslashes group and escape — but nothing is expanded and nothing is interpreted: the command runs
 * directly, without a shell. Characters a shell would act on (`|`, `;`, `$`, …) are refused unless quoted,
 * so nobody is surprised that `a | b` did not pipe; for that, write `sh -c '…'`.
 */
const SHELL_SPECIAL = new Set(['|', '&', ';', '<', '>', '(', ')', '$', '`']);

function refuse(message: string): never {
  throw new InputError('invalid_command', message, { field: 'command' });
}

export function splitCommandLine(line: string): string[] {
  if (/[\r\n]/.test(line)) refuse('The command is one line; join its parts with spaces.');
  if (line.includes('\0')) refuse('The command contains a NUL character.');
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const char = line[i] as string;
    if (char === ' ' || char === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i += 1;
      continue;
    }
    inWord = true;
    if (char === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) refuse('A single quote (\') is not closed.');
      word += line.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (char === '"') {
      i += 1;
      for (;;) {
        if (i >= line.length) refuse('A double quote (") is not closed.');
        const inner = line[i] as string;
        if (inner === '"') break;
        if (inner === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1] as string)) {
          word += line[i + 1];
          i += 2;
          continue;
        }
        if (inner === '$' || inner === '`') {
          refuse(`"${inner}" inside double quotes would be expanded by a shell; forgelink does not expand it. Use single quotes, or sh -c '…'.`);
        }
        word += inner;
        i += 1;
      }
      i += 1;
      continue;
    }
    if (char === '\\') {
      if (i + 1 >= line.length) refuse('The command ends with a lone backslash.');
      word += line[i + 1];
      i += 2;
      continue;
    }
    if (SHELL_SPECIAL.has(char)) {
      refuse(`"${char}" would be interpreted by a shell, but the command runs without one. Quote it, or run sh -c '…'.`);
    }
    word += char;
    i += 1;
  }
  if (inWord) words.push(word);
  if (words.length === 0) refuse('The agent command is empty.');
  return words;
}
