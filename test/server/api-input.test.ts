import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { serve, type ServerType } from '@hono/node-server';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

const RUN = { connectionId: 'con_x', project: 'acme/api', command: ['true'] };

describe('API input: content types and readable validation messages (in-process and over real HTTP)', () => {
  let forgelink: TestForgelink;
  let alice: TestUser;
  let server: ServerType;
  let port: number;

  before(async () => {
    forgelink = await startForgelink();
    alice = await forgelink.addUser('alice');
    server = await new Promise<ServerType>((resolve) => {
      const started = serve({ fetch: forgelink.app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started));
    });
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await forgelink.close();
  });

  async function send(method: string, path: string, body: string | Blob | URLSearchParams | undefined, headers: Record<string, string> = {}) {
    const response = await forgelink.app.request(path, {
      method,
      headers: { authorization: `Bearer ${alice.apiKey}`, ...headers },
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    return { status: response.status, text, json: text.startsWith('{') ? JSON.parse(text) : null };
  }

  /** A raw HTTP/1.1 request, so no client library adds or drops a content type. */
  function raw(method: string, path: string, body: string | null, headers: Record<string, string>): Promise<{ status: number; json: any }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers: { authorization: `Bearer ${alice.apiKey}`, ...headers } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text.startsWith('{') ? JSON.parse(text) : null }));
      });
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }

  test('JSON sent as text/plain, as a form or without a content type is a 415 naming application/json', async () => {
    const json = JSON.stringify(RUN);
    for (const [what, response] of [
      ['text/plain', await send('POST', '/api/v1/runs', json, { 'content-type': 'text/plain' })],
      ['a string body (fetch makes it text/plain)', await send('POST', '/api/v1/runs', json)],
      ['a form', await send('POST', '/api/v1/runs', new URLSearchParams({ project: 'acme/api' }))],
      ['a body without a content type', await send('POST', '/api/v1/runs', new Blob([json]))],
      ['PATCH as text/plain', await send('PATCH', '/api/v1/connections/con_x', '{"rotation":{"enabled":true}}', { 'content-type': 'text/plain' })],
      ['a route that reads no body', await send('POST', '/api/v1/runs/run_x/cancel', '{}', { 'content-type': 'text/plain' })],
    ] as const) {
      assert.equal(response.status, 415, `${what}: ${response.text}`);
      assert.equal(response.json.error.code, 'unsupported_media_type', what);
      assert.match(response.json.error.message, /Content-Type: application\/json/, what);
    }
  });

  test('over real HTTP: a body without a content type is a 415; a bodiless POST and application/json with a charset pass', async () => {
    const json = JSON.stringify(RUN);
    const noType = await raw('POST', '/api/v1/runs', json, { 'content-length': String(Buffer.byteLength(json)) });
    assert.equal(noType.status, 415);
    assert.match(noType.json.error.message, /named no content type/);
    const chunked = await raw('POST', '/api/v1/runs', json, { 'transfer-encoding': 'chunked' });
    assert.equal(chunked.status, 415);
    // No body at all: the route answers for itself (the run does not exist), not with 415.
    assert.equal((await raw('POST', '/api/v1/runs/run_x/cancel', null, {})).status, 404);
    assert.equal((await raw('POST', '/api/v1/runs/run_x/cancel', null, { 'content-length': '0' })).status, 404);
    const charset = await raw('POST', '/api/v1/runs', json, { 'content-type': 'Application/JSON; charset=utf-8', 'content-length': String(Buffer.byteLength(json)) });
    assert.equal(charset.status, 404, JSON.stringify(charset.json));
    assert.equal(charset.json.error.field, 'connectionId');
  });

  test('query parameters that must be whole numbers say so', async () => {
    for (const [path, field] of [
      ['/api/v1/runs?limit=abc', 'limit'],
      ['/api/v1/runs?limit=1.5', 'limit'],
      ['/api/v1/audit?limit=ten', 'limit'],
      ['/api/v1/connections/con_x/events?limit=x', 'limit'],
      ['/api/v1/runs/run_x/log?after=later', 'after'],
    ] as const) {
      const response = await send('GET', path, undefined);
      assert.equal(response.status, 400, `${path}: ${response.text}`);
      assert.equal(response.json.error.field, field);
      assert.equal(response.json.error.message, `"${field}" (query parameter) must be a whole number.`, path);
    }
    const range = await send('GET', '/api/v1/runs?limit=0', undefined);
    assert.equal(range.json.error.message, '"limit" (query parameter) must be at least 1.');
    const big = await send('GET', '/api/v1/runs?limit=501', undefined);
    assert.equal(big.json.error.message, '"limit" (query parameter) must be at most 500.');
  });

  test('a body field of the wrong JSON type says which type it must be; only a missing one "is required"', async () => {
    for (const [body, field, message] of [
      [{ ...RUN, command: 'true' }, 'command', '"command" must be a list.'],
      [{ ...RUN, command: [1] }, 'command', '"command[0]" must be a string.'],
      [{ ...RUN, command: [] }, 'command', '"command" must not be empty.'],
      [{ ...RUN, project: 5 }, 'project', '"project" must be a string.'],
      [{ ...RUN, project: null }, 'project', '"project" must be a string.'],
      [{ ...RUN, timeoutSeconds: '60' }, 'timeoutSeconds', '"timeoutSeconds" must be a number.'],
      [{ ...RUN, timeoutSeconds: 1.5 }, 'timeoutSeconds', '"timeoutSeconds" must be a whole number.'],
      [{ ...RUN, allowHosts: 'example.com' }, 'allowHosts', '"allowHosts" must be a list.'],
      [{ connectionId: 'con_x', command: ['true'] }, 'project', '"project" is required.'],
    ] as const) {
      const response = await forgelink.call(alice, 'POST', '/api/v1/runs', body);
      assert.equal(response.status, 400, response.text);
      assert.equal(response.json.error.field, field, response.text);
      assert.equal(response.json.error.message, message);
    }
    const notObject = await forgelink.call(alice, 'POST', '/api/v1/runs', '[1,2]');
    assert.equal(notObject.status, 400);
    assert.equal(notObject.json.error.message, 'The request body must be a JSON object.');
  });
});
