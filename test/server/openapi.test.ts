import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiKeyResponse, AuditEntryResponse, ConnectionResponse, CreatedApiKeyResponse, DoctorReportResponse, ErrorResponse, ProjectResponse, RunResponse } from '../../src/server/schemas.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, type TestForgelink } from '../support/forgelink.ts';

describe('the OpenAPI document', () => {
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

  test('is served without an API key and describes every route with the request schemas', async () => {
    const response = await forgelink.call(null, 'GET', '/api/v1/openapi.json');
    assert.equal(response.status, 200);
    const doc = response.json;
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/agents',
      '/audit',
      '/connections',
      '/connections/{id}',
      '/connections/{id}/check',
      '/connections/{id}/doctor',
      '/connections/{id}/events',
      '/connections/{id}/projects',
      '/connections/{id}/rotate',
      '/keys',
      '/keys/{id}',
      '/runs',
      '/runs/{id}',
      '/runs/{id}/cancel',
      '/runs/{id}/log',
      '/secrets',
      '/secrets/{name}',
      '/workers',
    ]);
    assert.deepEqual(doc.components.schemas.ConnectRequest.required, ['token']);
    assert.deepEqual([...doc.components.schemas.StartRunRequest.required].sort(), ['connectionId', 'project']);
    assert.deepEqual(doc.components.schemas.CreateKeyRequest.required, ['name']);
  });

  test('real responses match the documented schemas', async () => {
    const alice = await forgelink.addUser('alice');
    const bot = gitlab.addUser({ username: 'bot' }).id;
    gitlab.addProject({ path: 'g/app', members: [{ userId: bot, accessLevel: 30 }] });
    const token = gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-01-01' });
    const connection = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, token });
    ConnectionResponse.strict().parse(connection.json);
    const projects = await forgelink.call(alice, 'GET', `/api/v1/connections/${connection.json.id}/projects`);
    for (const project of projects.json.projects) ProjectResponse.strict().parse(project);
    const run = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: connection.json.id, project: 'g/app', command: ['true'] });
    RunResponse.strict().parse(run.json);
    await forgelink.runs.idle();
    RunResponse.strict().parse((await forgelink.call(alice, 'GET', `/api/v1/runs/${run.json.id}`)).json);
    ErrorResponse.strict().parse((await forgelink.call(alice, 'GET', '/api/v1/runs/run_nope')).json);
    const doctor = await forgelink.call(alice, 'POST', `/api/v1/connections/${connection.json.id}/doctor`);
    assert.equal(doctor.status, 200, doctor.text);
    DoctorReportResponse.strict().parse(doctor.json);
    const key = await forgelink.call(alice, 'POST', '/api/v1/keys', { name: 'ci' });
    assert.equal(key.status, 201, key.text);
    CreatedApiKeyResponse.strict().parse(key.json);
    for (const listed of (await forgelink.call(alice, 'GET', '/api/v1/keys')).json.keys) ApiKeyResponse.strict().parse(listed);
    for (const entry of (await forgelink.call(alice, 'GET', '/api/v1/audit')).json.entries) AuditEntryResponse.strict().parse(entry);
  });
});
