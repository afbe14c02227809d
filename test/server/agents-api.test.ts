import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

describe('agent profiles in the HTTP API', () => {
  let forgelink: TestForgelink;
  let alice: TestUser;
  before(async () => {
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
  });
  after(() => forgelink.close());

  test('GET /agents lists the profiles; it needs an API key', async () => {
    const listed = await forgelink.call(alice, 'GET', '/api/v1/agents');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json.agents.map((agent: { name: string }) => agent.name), ['claude-code', 'codex', 'custom']);
    assert.equal((await forgelink.call(null, 'GET', '/api/v1/agents')).status, 401);
  });

  for (const [name, body, code, field] of [
    ['an unknown profile', { agent: 'claude', task: 'fix it' }, 'unknown_agent', 'agent'],
    ['a profile without a task', { agent: 'claude-code' }, 'invalid_task', 'task'],
    ['a profile with a command', { agent: 'codex', task: 'fix it', command: ['sh'] }, 'invalid_command', 'command'],
    ['no agent and no command', {}, 'invalid_command', 'command'],
  ] as const) {
    test(`POST /runs with ${name} is 400 naming ${field}, and nothing is queued`, async () => {
      const response = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: 'con_none', project: 'g/app', ...body });
      assert.equal(response.status, 400, response.text);
      assert.equal(response.json.error.code, code);
      assert.equal(response.json.error.field, field);
      assert.deepEqual((await forgelink.call(alice, 'GET', '/api/v1/runs')).json.runs, []);
    });
  }
});
