import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const demo = fileURLToPath(new URL('../../examples/demo.ts', import.meta.url));

test('npm run demo, its output piped: both runs succeed, and no colour codes reach the pipe', async () => {
  const child = spawn(process.execPath, [demo], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: undefined } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  assert.match(stdout, /== Runs so far/);
  assert.ok(!stdout.includes('\x1b'), 'an escape sequence in piped output');
  assert.equal((stdout.match(/^run_\w+ {2}succeeded$/gm) ?? []).length, 2, 'both runs (api token, push-only token) succeeded');
});
