import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeAnthropic, type FakeAnthropic } from './index.ts';

const KEY = 'sk-ant-test-key';
const TOOLS = [{ name: 'Bash', description: 'runs a command', input_schema: { type: 'object' } }];

describe('fake Anthropic Messages API', () => {
  let fake: FakeAnthropic;
  before(async () => {
    fake = await startFakeAnthropic({
      apiKey: KEY,
      script: [{ text: 'Listing files.', tool: 'Bash', input: { command: 'ls -la' } }, { text: 'All done.' }],
    });
  });
  after(() => fake.close());

  function post(body: unknown, headers: Record<string, string> = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' }) {
    return fetch(`${fake.baseUrl}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  }

  test('a streamed turn: message_start, a text and a tool_use block with input_json_delta, message_delta, message_stop', async () => {
    const response = await post({ model: 'claude-test', max_tokens: 100, stream: true, tools: TOOLS, messages: [{ role: 'user', content: 'go' }] });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const records = (await response.text()).split('\n\n').filter((record) => record !== '');
    const events = records.map((record) => {
      const [eventLine, dataLine] = record.split('\n');
      const data = JSON.parse((dataLine ?? '').replace(/^data: /, ''));
      assert.equal(eventLine, `event: ${data.type}`);
      return data;
    });
    assert.deepEqual(
      [...new Set(events.map((event) => event.type))],
      ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    assert.deepEqual(events[0].message.content, []);
    const toolStart = events.find((event) => event.type === 'content_block_start' && event.content_block.type === 'tool_use');
    assert.equal(toolStart.index, 1);
    assert.deepEqual(toolStart.content_block.input, {});
    const json = events
      .filter((event) => event.type === 'content_block_delta' && event.index === 1)
      .map((event) => {
        assert.equal(event.delta.type, 'input_json_delta');
        return event.delta.partial_json;
      })
      .join('');
    assert.deepEqual(JSON.parse(json), { command: 'ls -la' });
    const text = events.filter((event) => event.type === 'content_block_delta' && event.index === 0).map((event) => event.delta.text).join('');
    assert.equal(text, 'Listing files.');
    const delta = events.find((event) => event.type === 'message_delta');
    assert.equal(delta.delta.stop_reason, 'tool_use');
    assert.ok(delta.usage.output_tokens > 0);
  });

  test('the next turn follows the conversation; without stream it is one JSON Message', async () => {
    const response = await post({
      model: 'claude-test',
      max_tokens: 100,
      tools: TOOLS,
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'ls -la' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'README.md' }] },
      ],
    });
    assert.equal(response.status, 200);
    const message: any = await response.json();
    assert.equal(message.type, 'message');
    assert.equal(message.stop_reason, 'end_turn');
    assert.deepEqual(message.content, [{ type: 'text', text: 'All done.' }]);
    assert.equal(fake.turnsServed(), 2);
  });

  test('a wrong key is 401, a missing version 400, an unknown route 404, each as the API words errors', async () => {
    const body = { model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    const wrongKey = await post(body, { 'x-api-key': 'nope', 'anthropic-version': '2023-06-01' });
    assert.equal(wrongKey.status, 401);
    assert.equal(((await wrongKey.json()) as any).error.type, 'authentication_error');
    const noVersion = await post(body, { 'x-api-key': KEY });
    assert.equal(noVersion.status, 400);
    assert.equal(((await noVersion.json()) as any).error.type, 'invalid_request_error');
    const unknown = await fetch(`${fake.baseUrl}/v1/models/nope`, { headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' } });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as any).type, 'error');
    const hello = await fetch(`${fake.baseUrl}/api/hello`, { method: 'HEAD' });
    assert.equal(hello.status, 200);
    assert.equal(fake.requests.find((request) => request.path === '/v1/messages' && !request.keyMatched)?.body?.model, 'claude-test');
  });
});
