import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { testMonitor } from '../support/monitor.ts';

const HOUR = 3600_000;

/**
 * Issue 9, point 2: one GitLab answer, one status, whoever asks. The answer here is a token GitLab reports neither
 * active nor revoked (`GET /personal_access_tokens/self` answering 200 with `active: false, revoked: false`, as it does
 * when the token's last day ends during the request). GitLab's rule (active = not revoked and not expired) makes that
 * token expired, and connect, check, the monitor, a run's preflight and rotation must all say so.
 */
describe('a token GitLab reports neither active nor revoked is expired everywhere', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bot: number;
  let now = Date.now();
  const clock = { now: () => new Date(now) };

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    bot = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    gitlab.addProject({ path: 'acme/api', members: [{ userId: bot, accessLevel: 30 }] });
    forgelink = await startForgelink({ clock });
    alice = await forgelink.addUser('alice');
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  function newToken(): string {
    return gitlab.addToken(bot, { scopes: ['api', 'read_user'], expiresAt: '2099-01-01' });
  }

  async function connect(token: string): Promise<string> {
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(response.status, 201, response.text);
    return response.json.id;
  }

  async function status(id: string): Promise<{ status: string; statusReason: string | null }> {
    const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`);
    return { status: shown.json.status, statusReason: shown.json.statusReason };
  }

  function selfAnswers(token: string): void {
    gitlab.injectExpiryDuringSelfRequest(token);
  }

  test('connect refuses it as expired', async () => {
    const token = newToken();
    selfAnswers(token);
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(response.status, 400, response.text);
    assert.equal(response.json.error.code, 'gitlab_token_expired');
    assert.equal(response.json.error.field, 'token');
  });

  test('Check now records it expired', async () => {
    const token = newToken();
    const id = await connect(token);
    selfAnswers(token);
    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
    assert.equal(checked.status, 200, checked.text);
    assert.equal(checked.json.status, 'expired');
    assert.match(checked.json.statusReason, /expired on \d{4}-\d{2}-\d{2} \(it is neither active nor revoked\)/);
  });

  test('the monitor records it expired', async () => {
    const token = newToken();
    const id = await connect(token);
    selfAnswers(token);
    const monitor = testMonitor(forgelink, clock);
    try {
      now += HOUR + 1;
      await monitor.tick();
    } finally {
      await monitor.stop();
    }
    assert.equal((await status(id)).status, 'expired');
  });

  test("a run's preflight records it expired, and the run fails saying so", async () => {
    const token = newToken();
    const id = await connect(token);
    selfAnswers(token);
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: id, project: 'acme/api', command: ['true'] });
    assert.equal(started.status, 201, started.text);
    await forgelink.runs.idle();
    const run = await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`);
    assert.equal(run.json.status, 'failed');
    assert.equal(run.json.error.code, 'gitlab_token_expired');
    assert.equal((await status(id)).status, 'expired');
  });

  test('rotation records it expired and does not present it to the rotate endpoint', async () => {
    const token = newToken();
    const id = await connect(token);
    selfAnswers(token);
    const rotated = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/rotate`);
    assert.equal(rotated.status, 409, rotated.text);
    assert.equal(rotated.json.error.code, 'gitlab_token_expired');
    assert.equal((await status(id)).status, 'expired');
    assert.equal(gitlab.rotationCount(), 0);
  });
});
