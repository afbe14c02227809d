import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { waitFor } from '../support/wait.ts';
import { processesWith, run, sandboxFixture, sh, waitForNoProcesses } from './helpers.ts';

const NO_NETWORK = { allow: [] };
/** How much later than its deadline a kill may land on a busy machine (other test files run at the same time). */
const SLACK_MS = 15_000;

test('a command that forks and hangs is killed at its timeout, with its whole tree', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({ runId: 'timeout', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  // Long enough for the children to be seen on a busy machine; the point is that the timeout ends them all.
  const timeoutMs = 3000;
  let output = '';
  const started = Date.now();
  const pending = run(session, sh('sleep 1000 & sleep 1000 & echo forked; wait', box.marker), {
    env: { MARK: box.marker },
    timeoutMs,
    onOutput: (chunk) => (output += chunk),
  });
  await waitFor('the command to fork', () => output.includes('forked'));
  assert.ok((await processesWith(box.marker)).length >= 3, 'the sleeping children should be running before the timeout');
  const result = await pending;
  const elapsed = Date.now() - started;
  assert.equal(result.timedOut, true);
  assert.equal(result.canceled, false);
  assert.equal(result.stdout, 'forked\n');
  assert.ok(elapsed >= timeoutMs && elapsed < timeoutMs + SLACK_MS, `took ${elapsed} ms`);
  assert.deepEqual(await waitForNoProcesses(box.marker), []);
});

test('cancel through the AbortSignal stops the command and reports it canceled', async (t) => {
  const box = await sandboxFixture(t);
  const workspace = await box.workspace();
  const session = await box.create({ runId: 'cancel', workspaceDir: workspace, allowlist: [], outboundPolicy: NO_NETWORK });
  const controller = new AbortController();
  // Cancel once the command runs and has forked, not after a guessed delay.
  const result = await run(session, sh('sleep 1000 & sleep 1000 & echo forked; wait', box.marker), {
    env: { MARK: box.marker },
    timeoutMs: 60_000,
    signal: controller.signal,
    onOutput: (chunk) => {
      if (chunk.includes('forked')) controller.abort();
    },
  });
  assert.equal(result.canceled, true);
  assert.equal(result.timedOut, false);
  assert.deepEqual(await waitForNoProcesses(box.marker), []);

  const notStarted = await run(session, sh('touch /workspace/ran', box.marker), { env: { MARK: box.marker }, signal: AbortSignal.abort() });
  assert.deepEqual(notStarted, { exitCode: null, signal: null, timedOut: false, canceled: true, stdout: '', stderr: '' });
  await assert.rejects(access(path.join(workspace, 'ran')));
});

test('a command that ignores SIGTERM is killed after the grace period', async (t) => {
  const box = await sandboxFixture(t, { killGraceMs: 300 });
  const session = await box.create({ runId: 'stubborn', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  // Stopped once it ignores SIGTERM (a timeout counted from the start could come before its trap on a busy machine).
  const stopper = new AbortController();
  let output = '';
  const pending = run(session, sh("trap '' TERM; echo ready; while :; do sleep 1; done", box.marker), {
    env: { MARK: box.marker },
    timeoutMs: 60_000,
    signal: stopper.signal,
    onOutput: (chunk) => (output += chunk),
  });
  await waitFor('the command to ignore SIGTERM', () => output.includes('ready'));
  const stopped = Date.now();
  stopper.abort();
  const result = await pending;
  const elapsed = Date.now() - stopped;
  assert.equal(result.canceled, true);
  assert.equal(result.signal, 'SIGKILL');
  assert.ok(elapsed >= 300 && elapsed < 300 + SLACK_MS, `took ${elapsed} ms after the stop`);
  assert.deepEqual(await waitForNoProcesses(box.marker), []);
});

test('background processes end with the command; destroy kills what still runs', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({ runId: 'bg', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  const started = Date.now();
  const detached = await run(session, sh('setsid sleep 1000 >/dev/null 2>&1 & nohup sleep 1000 >/dev/null 2>&1 & echo left', box.marker), {
    env: { MARK: box.marker },
  });
  assert.equal(detached.exitCode, 0);
  assert.ok(Date.now() - started < SLACK_MS, 'the command returned without waiting for what it left running');
  assert.deepEqual(await waitForNoProcesses(box.marker), [], 'the pid namespace ends with the command');

  let output = '';
  const pending = run(session, sh('echo sleeping; sleep 1000', box.marker), {
    env: { MARK: box.marker },
    timeoutMs: 60_000,
    onOutput: (chunk) => (output += chunk),
  });
  await waitFor('the command to start', () => output.includes('sleeping'));
  await session.destroy();
  const result = await pending;
  assert.equal(result.signal, 'SIGKILL');
  assert.deepEqual(await waitForNoProcesses(box.marker), []);
});

test('a command reads what it is given on its standard input, as it comes, and nothing without it', async (t) => {
  const box = await sandboxFixture(t);
  const session = await box.create({ runId: 'stdin', workspaceDir: await box.workspace(), allowlist: [], outboundPolicy: NO_NETWORK });
  // A conversation: the command answers the first line before the second is written.
  const input = new PassThrough();
  let output = '';
  const pending = run(session, sh('read -r first; echo "got $first"; read -r second; echo "then $second"', box.marker), {
    offline: true,
    input,
    onOutput: (chunk) => (output += chunk),
  });
  input.write('one\n');
  await waitFor('the answer to the first line', () => output.includes('got one'));
  input.end('two\n');
  const result = await pending;
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.stdout, 'got one\nthen two\n');
  // Without input the command reads end of file at once, offline or not.
  for (const offline of [true, false]) {
    const empty = await run(session, sh('if read -r line; then echo "read $line"; else echo nothing; fi', box.marker), { offline });
    assert.equal(empty.stdout, 'nothing\n', empty.stderr);
  }
});
