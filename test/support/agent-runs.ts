import assert from 'node:assert/strict';
import type { FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { argvHolding } from './cli-checks.ts';
import type { TestForgelink, TestUser } from './forgelink.ts';

/**
 * What the real-agent tests (test/runs/claude-code.test.ts, test/runs/codex.test.ts) check of a run that did the
 * GitLab work of testing/gitlab-work.ts.
 */

/**
 * A real agent's run may take its time on a CI machine busy with other test files (Node starts per tool call):
 * its run limit, and the limit of a test that waits for one.
 */
export const AGENT_RUN_SECONDS = 300;
export const AGENT_TEST_TIMEOUT_MS = (AGENT_RUN_SECONDS + 120) * 1000;

/** Starts a run through the API and waits until it ends; returns the finished run. */
export async function runToEnd(forgelink: TestForgelink, user: TestUser, body: Record<string, unknown>): Promise<any> {
  const started = await forgelink.call(user, 'POST', '/api/v1/runs', { timeoutSeconds: AGENT_RUN_SECONDS, ...body });
  assert.equal(started.status, 201, started.text);
  for (;;) {
    const current = await forgelink.call(user, 'GET', `/api/v1/runs/${started.json.id}`);
    if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The run's stored log as one text. */
export async function runLogText(forgelink: TestForgelink, user: TestUser, runId: string): Promise<string> {
  const response = await forgelink.call(user, 'GET', `/api/v1/runs/${runId}/log`);
  return response.json.entries.map((entry: { text: string }) => entry.text).join('');
}

/** Runs `during` while watching every host process's argv for each secret; returns its value and the leaks. */
export async function watchArgv<T>(secrets: readonly string[], during: () => Promise<T>): Promise<{ value: T; leaks: string[] }> {
  const [first, ...rest] = secrets;
  if (first === undefined) return { value: await during(), leaks: [] };
  const outer = await argvHolding(first, () => watchArgv(rest, during));
  return { value: outer.value.value, leaks: [...outer.leaks, ...outer.value.leaks] };
}

/** forgelink listed the branch the agent pushed, the merge request from it to main and the issue it filed, as GitLab holds them. */
export function assertGitLabWorkListed(run: any, gitlab: FakeGitLab, projectId: number, branchName: string): void {
  const pushed = gitlab.branches(projectId).find((branch) => branch.name === branchName);
  assert.ok(pushed, `no branch ${branchName} on GitLab`);
  assert.deepEqual(
    run.outputs.branches.map((branch: { name: string; created: boolean; sha: string }) => [branch.name, branch.created, branch.sha]),
    [[branchName, true, pushed.sha]],
  );
  const mergeRequest = gitlab.mergeRequests(projectId).find((mr) => mr.sourceBranch === branchName);
  assert.ok(mergeRequest);
  assert.deepEqual(
    run.outputs.mergeRequests.map((mr: { iid: number; sourceBranch: string; targetBranch: string }) => [mr.iid, mr.sourceBranch, mr.targetBranch]),
    [[mergeRequest.iid, branchName, 'main']],
  );
  assert.equal(run.outputs.issues.length, 1);
  assert.equal(run.outputs.issues[0].title, 'README needs a review');
  assert.ok(gitlab.issues(projectId).some((issue) => issue.iid === run.outputs.issues[0].iid && issue.title === 'README needs a review'));
}

/** None of `secrets` is in any process's argv (`argvLeaks`), the run's log, its API view, forgelink's log or any database row. */
export async function assertNoSecretLeaked(forgelink: TestForgelink, run: unknown, log: string, secrets: readonly string[], argvLeaks: readonly string[]): Promise<void> {
  assert.deepEqual(argvLeaks, [], 'a secret appeared in a process argument list');
  const rows: string[] = [];
  for (const table of await forgelink.storage.db.introspection.getTables()) {
    rows.push(JSON.stringify(await forgelink.storage.db.selectFrom(table.name as never).selectAll().execute()));
  }
  const everything = [log, JSON.stringify(run), forgelink.logs.join(''), ...rows].join('\n');
  assert.ok(rows.length > 5);
  for (const secret of secrets) assert.ok(!everything.includes(secret), 'a secret leaked into a log, response or row');
}
