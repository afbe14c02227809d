import assert from 'node:assert/strict';
import type { Result } from './processes.ts';

/** The result of a command that must have succeeded; says what it printed on stderr when it did not. */
export function succeeded(result: Result): Result {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
  return result;
}

/** A failed command, as the README promises: nothing on stdout, one `forgelink: …` line on stderr matching `pattern`. */
export function failedWithOneLine(result: Result, pattern: RegExp): void {
  assert.notEqual(result.code, 0);
  assert.equal(result.stdout, '');
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0] as string, /^forgelink: /);
  assert.match(result.stderr, pattern);
}
