import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { labelled, sandboxApiCall } from './fixtures.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

/**
 * The run policy's options from the operator down (docs/contract.md, "Run policy"): the operator allows merging,
 * a connection may turn options off and pick the credentials mode, a run may narrow further but never widen.
 */
describe('run policy: operator ∧ connection ∧ run, fixed on the run at its start (real bubblewrap, fake GitLab over HTTPS)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let projectId: number;
  let connectionId: string;

  async function runToEnd(startedId: string): Promise<any> {
    for (;;) {
      const current = await forgelink.call(alice, 'GET', `/api/v1/runs/${startedId}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    const botId = gitlab.addUser({ username: 'narrow-bot', name: 'Narrow Bot' }).id;
    projectId = gitlab.addProject({ path: 'acme/narrow', members: [{ userId: botId, accessLevel: 40 }] }).id;
    // The operator lets runs merge; tags and other projects stay off.
    forgelink = await startForgelink({ env: { FORGELINK_POLICY: '{"allowMerge":true}' } });
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
    const token = gitlab.addToken(botId, { scopes: ['api', 'read_user'], expiresAt: '2027-06-30' });
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(created.status, 201, created.text);
    connectionId = created.json.id;
    assert.equal(created.json.credentials, null);
    assert.deepEqual(created.json.policy, {});
  });
  after(async () => {
    await forgelink?.close();
    await gitlab?.close();
  });

  test('widening is refused before anything is queued, naming policy.<option>; the connection narrows and picks the credentials mode of its runs', async () => {
    const base = { connectionId, project: 'acme/narrow', command: ['true'] };
    const refused = async (body: Record<string, unknown>, field: string, code = 'policy_not_allowed') => {
      const response = await forgelink.call(alice, 'POST', '/api/v1/runs', body);
      assert.equal(response.status, 400, response.text);
      assert.equal(response.json.error.code, code, response.text);
      assert.equal(response.json.error.field, field, response.text);
      return response.json.error.message as string;
    };
    // The operator leaves tags off: a run cannot turn them on.
    assert.match(await refused({ ...base, policy: { allowTags: true } }, 'policy.allowTags'), /FORGELINK_POLICY/);
    await refused({ ...base, policy: { sideways: false } }, 'policy', 'invalid_input');

    // The connection turns merging off; a run asking for it is refused, naming the connection's policy.
    const others = await forgelink.call(bob, 'PATCH', `/api/v1/connections/${connectionId}`, { policy: { allowMerge: false } });
    assert.equal(others.status, 404, others.text);
    const narrowed = await forgelink.call(alice, 'PATCH', `/api/v1/connections/${connectionId}`, { policy: { allowMerge: false } });
    assert.equal(narrowed.status, 200, narrowed.text);
    assert.deepEqual(narrowed.json.policy, { allowMerge: false });
    assert.match(await refused({ ...base, policy: { allowMerge: true } }, 'policy.allowMerge'), /connection's policy/);
    const badMode = await forgelink.call(alice, 'PATCH', `/api/v1/connections/${connectionId}`, { credentials: 'sometimes' });
    assert.equal(badMode.status, 400, badMode.text);
    assert.equal(badMode.json.error.field, 'credentials', badMode.text);

    // Lifted again, and the connection's runs made direct: a run that does not say gets `direct`.
    const direct = await forgelink.call(alice, 'PATCH', `/api/v1/connections/${connectionId}`, { credentials: 'direct', policy: { allowMerge: true } });
    assert.equal(direct.status, 200, direct.text);
    assert.equal(direct.json.credentials, 'direct');
    assert.deepEqual(direct.json.policy, {});
    assert.equal((await forgelink.call(alice, 'GET', `/api/v1/connections/${connectionId}`)).json.credentials, 'direct');
    // A direct run has no broker to narrow: asking is refused rather than ignored.
    await refused({ ...base, policy: { allowMerge: false } }, 'policy', 'policy_needs_brokered');
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', base);
    assert.equal(started.status, 201, started.text);
    assert.equal(started.json.credentials, 'direct');
    assert.equal(started.json.policy.options, null);
    const finished = await runToEnd(started.json.id);
    assert.equal(finished.status, 'succeeded', JSON.stringify(finished.error));
    assert.equal(finished.credentials, 'direct');

    // Back to the server's default (brokered).
    const reset = await forgelink.call(alice, 'PATCH', `/api/v1/connections/${connectionId}`, { credentials: null });
    assert.equal(reset.json.credentials, null, reset.text);
  });

  test('a run that turns merging off is refused a merge at the broker, though the operator allows it', async () => {
    const call = sandboxApiCall;
    const script = [
      'cd /workspace',
      'git commit -q --allow-empty -m change',
      'git push -q origin HEAD:refs/heads/agent/narrow; echo "feature:$?"',
      call('open-mr', 'POST', '/projects/acme%2Fnarrow/merge_requests', '--data-urlencode source_branch=agent/narrow --data-urlencode target_branch=main --data-urlencode title=narrow'),
      call('merge', 'PUT', '/projects/acme%2Fnarrow/merge_requests/1/merge'),
    ].join('\n');
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', {
      connectionId,
      project: 'acme/narrow',
      command: ['sh', '-c', script],
      credentials: 'brokered',
      policy: { allowMerge: false },
    });
    assert.equal(started.status, 201, started.text);
    // Fixed at the start: the operator's options narrowed by the run.
    assert.deepEqual(started.json.policy.options, { allowTags: false, allowMerge: false, readOtherProjects: false });
    const run = await runToEnd(started.json.id);
    const log = (await forgelink.call(alice, 'GET', `/api/v1/runs/${run.id}/log`)).json.entries.map((entry: { text: string }) => entry.text).join('');
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    const line = (label: string) => labelled(log, label);
    assert.equal(line('feature'), '0', log);
    assert.equal(line('open-mr'), '201', log);
    assert.equal(line('merge'), '403', log);
    assert.match(log, /\{"message":"forgelink policy \(api\.merge\): /);
    assert.deepEqual(gitlab.mergeRequests(projectId).map((mr) => mr.state), ['opened']);
    assert.deepEqual(run.policy.refused.map((refusal: { rule: string }) => refusal.rule), ['api.merge']);
    assert.deepEqual(run.policy.options, { allowTags: false, allowMerge: false, readOtherProjects: false });
  });
});
