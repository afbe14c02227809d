import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateApiKey, hashApiKey } from '../../src/core/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink } from '../support/forgelink.ts';

describe('the audit trail records token decryptions with their reason, connections and runs', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;

  before(async () => {
    gitlab = await startFakeGitLab();
    forgelink = await startForgelink();
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  test('a connection, a check, a project listing, a run and a disconnect leave their entries; users see only theirs', async () => {
    const alice = await forgelink.addUser('alice');
    const bob = await forgelink.addUser('bob');
    const adminKey = generateApiKey();
    await forgelink.storage.users.createUser({ id: 'usr_admin', name: 'root', isAdmin: true, apiKeyHash: hashApiKey(adminKey), createdAt: new Date().toISOString() });
    const admin = { id: 'usr_admin', name: 'root', apiKey: adminKey };

    const bot = gitlab.addUser({ username: 'bot' }).id;
    gitlab.addProject({ path: 'g/app', members: [{ userId: bot, accessLevel: 30 }] });
    const token = gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-01-01' });
    const connection = (await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, token })).json;
    await forgelink.call(alice, 'POST', `/api/v1/connections/${connection.id}/check`);
    await forgelink.call(alice, 'GET', `/api/v1/connections/${connection.id}/projects`);
    const run = (await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: connection.id, project: 'g/app', command: ['true'] })).json;
    await forgelink.runs.idle();
    assert.equal((await forgelink.call(alice, 'DELETE', `/api/v1/connections/${connection.id}`)).status, 204);

    const response = await forgelink.call(alice, 'GET', `/api/v1/audit?connectionId=${connection.id}`);
    assert.equal(response.status, 200);
    const entries = [...response.json.entries].reverse();
    const trail = entries.map((e: { action: string; reason: string | null }) => `${e.action}${e.reason ? `:${e.reason}` : ''}`);
    assert.deepEqual(trail, [
      'connection.created',
      'token.decrypted:check',
      'connection.checked:check',
      'token.decrypted:projects',
      'run.started',
      'token.decrypted:run',
      'run.finished',
      'connection.disconnected',
    ]);
    const decryptedForRun = entries.find((e: { action: string; reason: string | null }) => e.action === 'token.decrypted' && e.reason === 'run');
    assert.equal(decryptedForRun.runId, run.id);
    assert.equal(decryptedForRun.actor, alice.id);
    assert.match(decryptedForRun.details.token, /^sha256:[0-9a-f]{12}$/);
    const finished = entries.find((e: { action: string }) => e.action === 'run.finished');
    assert.equal(finished.details.status, 'succeeded');
    assert.ok(!JSON.stringify(response.json).includes(token), 'the audit trail holds a token');

    assert.deepEqual((await forgelink.call(bob, 'GET', '/api/v1/audit')).json.entries, []);
    const all = (await forgelink.call(admin, 'GET', '/api/v1/audit')).json.entries;
    assert.ok(all.length >= entries.length);
    assert.equal((await forgelink.call(alice, 'GET', '/api/v1/audit?limit=0')).status, 400);
  });
});
