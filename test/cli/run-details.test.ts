import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideApiRequest } from '../../src/broker/policy.ts';
import { runDetails } from '../../src/cli/format.ts';
import { runView } from '../../src/runs/service.ts';
import { runPolicy } from '../broker/fixtures.ts';
import { newRun } from '../storage/run-records.ts';

test('runs show names a refusal\'s rule once; the refusal as stored (and as the agent got it) keeps its "forgelink policy (rule):" prefix', () => {
  const decision = decideApiRequest(runPolicy(), { method: 'DELETE', path: '/api/v4/projects/Group%2FSub%2FApp/repository/branches/main' });
  assert.ok(!decision.allow);
  assert.match(decision.message, /^forgelink policy \(push\.default_branch\): /);
  const refusal = { at: '2026-12-01T10:00:00.000Z', method: 'DELETE', target: '127.0.0.1:1/api/v4/projects/Group%2FSub%2FApp/repository/branches/main', rule: decision.rule, message: decision.message };
  const view = runView(newRun('usr_1', { status: 'succeeded', policy: { refused: [refusal], options: null } }));
  assert.equal(view.policy.refused[0]?.message, decision.message);
  const lines = runDetails(view).split('\n');
  const at = lines.indexOf('  Policy:     refused 1 request');
  assert.ok(at > 0, lines.join('\n'));
  assert.equal(
    lines[at + 1],
    '    DELETE 127.0.0.1:1/api/v4/projects/Group%2FSub%2FApp/repository/branches/main (push.default_branch): deleting the branch main through the API refused: it is the default branch of Group/Sub/App; push to a new branch and open a merge request instead',
  );
});
