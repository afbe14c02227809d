import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { connectionDetails } from '../../src/cli/format.ts';
import { bindingForSecret, createVault } from '../../src/vault/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

/** Issue 10, point 5: a sealed token forgelink cannot open is the connection's state (409, `invalid`), not a 500. */
describe('a connection whose sealed token cannot be opened', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bot: number;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    bot = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    gitlab.addProject({ path: 'acme/api', members: [{ userId: bot, accessLevel: 30 }] });
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  async function connect(): Promise<string> {
    const token = gitlab.addToken(bot, { scopes: ['api', 'read_user'], expiresAt: '2099-01-01' });
    const response = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(response.status, 201, response.text);
    return response.json.id;
  }

  /** Replaces the stored token's ciphertext, as a restore from another installation or a tampered row would. */
  async function replaceSealed(id: string, reseal: (sealed: string, binding: ReturnType<typeof bindingForSecret>) => string): Promise<void> {
    const { connections } = forgelink.storage;
    const secret = await connections.getSecret(alice.id, id, 'token');
    assert.ok(secret);
    const sealed = reseal(secret.sealed, bindingForSecret(secret));
    await connections.withConnectionLock(alice.id, id, (locked) => locked.update({ secrets: [{ id: secret.id, sealed }] }));
  }

  /** Sealed with a master key this forgelink does not have (key id k9). */
  const foreignKey = (_sealed: string, binding: ReturnType<typeof bindingForSecret>) =>
    createVault({ keyring: { versions: [{ id: 'k9', key: randomBytes(32) }] } }).seal('glpat-from-elsewhere', binding);
  /** One byte of the ciphertext changed. */
  const tampered = (sealed: string) => `${sealed.slice(0, -2)}${sealed.endsWith('AA') ? 'BB' : 'AA'}`;

  async function events(id: string) {
    return (await forgelink.call(alice, 'GET', `/api/v1/connections/${id}/events`)).json.events as { from: string; to: string; reason: string }[];
  }

  test('Check now: 409 vault_unknown_key, the connection becomes invalid saying which key to restore, once', async () => {
    const id = await connect();
    await replaceSealed(id, foreignKey);

    const checked = await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`);
    assert.equal(checked.status, 409, checked.text);
    assert.equal(checked.json.error.code, 'vault_unknown_key');
    assert.match(checked.json.error.message, /key id "k9".*or reconnect/);

    const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`);
    assert.equal(shown.json.status, 'invalid');
    assert.equal(shown.json.statusReason, checked.json.error.message);
    assert.deepEqual((await events(id)).map((event) => [event.from, event.to]), [['active', 'invalid']]);
    // `forgelink connections show` prints the status with its reason.
    assert.match(connectionDetails(shown.json, new Date()), /Status: +invalid — forgelink cannot open this connection's stored token: .*"k9"/);

    // Asked again: the same answer, no second transition.
    assert.equal((await forgelink.call(alice, 'POST', `/api/v1/connections/${id}/check`)).status, 409);
    assert.equal((await events(id)).length, 1);
  });

  test('projects: 409 vault_open_failed for a tampered token, and the connection shows invalid', async () => {
    const id = await connect();
    await replaceSealed(id, tampered);

    const projects = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}/projects`);
    assert.equal(projects.status, 409, projects.text);
    assert.equal(projects.json.error.code, 'vault_open_failed');
    assert.match(projects.json.error.message, /restore the master key that has key id "k1".*or reconnect/);
    const shown = await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`);
    assert.equal(shown.json.status, 'invalid');
    assert.equal(shown.json.statusReason, projects.json.error.message);
  });

  test('a run on it fails with the vault code and the reason; disconnecting still works', async () => {
    const id = await connect();
    await replaceSealed(id, foreignKey);
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: id, project: 'acme/api', command: ['true'] });
    assert.equal(started.status, 201, started.text);
    await forgelink.runs.idle();
    const run = await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`);
    assert.equal(run.json.status, 'failed');
    assert.equal(run.json.error.code, 'vault_unknown_key');
    assert.equal((await forgelink.call(alice, 'GET', `/api/v1/connections/${id}`)).json.status, 'invalid');
    assert.equal((await forgelink.call(alice, 'DELETE', `/api/v1/connections/${id}`)).status, 204);
  });
});
