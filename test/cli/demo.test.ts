import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runNode } from '../support/processes.ts';

const DEMO = fileURLToPath(new URL('../../examples/demo.ts', import.meta.url));

test('npm run demo into a pipe completes and writes no colour codes', async () => {
  const { NO_COLOR: _unset, ...env } = process.env;
  const result = await runNode([DEMO], { env });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^== Runs so far$/m);
  assert.ok(!result.stdout.includes('\x1b'), 'an escape sequence in the demo output');
  // The real Claude Code ran through the claude-code profile and made a branch, a merge request and an issue.
  assert.match(result.stdout, /^ {4}branch claude\/run_\w+ \w+ \(new\)/m);
  assert.match(result.stderr, /^Claude Code finished, 4 turns, cost \$\d+\.\d{4}, [\d.]+ s$/m);
  assert.match(result.stderr, /^forgelink: Run succeeded: 1 branch, 1 merge request, 1 issue$/m);
});
