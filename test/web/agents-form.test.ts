import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/server/web/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink } from '../support/forgelink.ts';
import { csrfOf, webClient } from './client.ts';

describe('the dashboard run form offers the agent profiles', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let client: ReturnType<typeof webClient>;
  let connectionId: string;
  let aliceId: string;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    const bot = gitlab.addUser({ username: 'bot' }).id;
    gitlab.addProject({ path: 'acme/api', members: [{ userId: bot, accessLevel: 30 }] });
    forgelink = await startForgelink();
    const alice = await forgelink.addUser('alice');
    aliceId = alice.id;
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', {
      baseUrl: gitlab.baseUrl,
      caPem: gitlab.caPem,
      token: gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-06-30' }),
    });
    connectionId = created.json.id;
    await forgelink.storage.users.setPasswordHash(alice.id, await hashPassword('a long dashboard password'));
    client = webClient(forgelink.app);
    const form = await client.get('/sign-in');
    await client.post('/sign-in', { _csrf: csrfOf(form.text), username: 'alice', password: 'a long dashboard password', next: '/' });
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  test('each profile is an option naming the secrets it needs; a profile without a task comes back with the error at Task', async () => {
    const page = await client.get('/runs');
    assert.equal(page.status, 200);
    assert.match(page.text, /<option value="claude-code">claude-code \(needs ANTHROPIC_API_KEY\)<\/option>/);
    assert.match(page.text, /<option value="codex">codex \(needs OPENAI_API_KEY\)<\/option>/);
    assert.match(page.text, /<option value="custom" selected>custom<\/option>/);
    const response = await client.post('/runs', {
      _csrf: csrfOf(page.text),
      intent: 'start',
      connectionId,
      project: 'acme/api',
      branch: '',
      agent: 'claude-code',
      task: ' ',
      command: 'ignored for a profile',
    });
    assert.equal(response.status, 400);
    assert.match(response.text, /<p class="field-error" id="task-error">.*Say what the claude-code agent should do/);
    assert.match(response.text, /<option value="claude-code" selected>/);
    assert.deepEqual(await forgelink.runs.list(aliceId, 10), []);
  });
});
