import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeOpenAi, type FakeOpenAi } from './index.ts';

const KEY = 'sk-test-key';
const TOOLS = [{ type: 'function', name: 'exec_command', parameters: { type: 'object' } }];
const USER = { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'go' }] };

describe('fake OpenAI Responses API', () => {
  let fake: FakeOpenAi;
  before(async () => {
    fake = await startFakeOpenAi({ apiKey: KEY, script: [{ text: 'Listing files.', tool: 'exec_command', arguments: { cmd: 'ls -la' } }, { text: 'All done.' }] });
  });
  after(() => fake.close());

  function post(body: unknown, key = KEY) {
    return fetch(`${fake.baseUrl}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
  }

  async function events(response: Response): Promise<any[]> {
    const records = (await response.text()).split('\n\n').filter((record) => record !== '');
    return records.map((record) => {
      const [eventLine, dataLine] = record.split('\n');
      const data = JSON.parse((dataLine ?? '').replace(/^data: /, ''));
      assert.equal(eventLine, `event: ${data.type}`);
      return data;
    });
  }

  test('a streamed turn: created, a message and a function_call as added/done items, then completed with usage', async () => {
    const response = await post({ model: 'gpt-test', stream: true, tools: TOOLS, input: [USER] });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const stream = await events(response);
    assert.deepEqual(stream.map((event) => event.type), [
      'response.created',
      'response.output_item.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.output_item.done',
      'response.completed',
    ]);
    const done = stream.filter((event) => event.type === 'response.output_item.done').map((event) => event.item);
    assert.deepEqual(done[0].content, [{ type: 'output_text', text: 'Listing files.', annotations: [] }]);
    assert.equal(done[1].type, 'function_call');
    assert.equal(done[1].name, 'exec_command');
    assert.deepEqual(JSON.parse(done[1].arguments), { cmd: 'ls -la' });
    const completed = stream.at(-1).response;
    assert.equal(completed.status, 'completed');
    assert.equal(completed.usage.total_tokens, completed.usage.input_tokens + completed.usage.output_tokens);
    assert.deepEqual(completed.output, done);
  });

  test('the turn follows the conversation: after the function call and its output comes the next turn', async () => {
    const call = { type: 'function_call', name: 'exec_command', arguments: '{"cmd":"ls -la"}', call_id: 'call_1' };
    const output = { type: 'function_call_output', call_id: 'call_1', output: 'total 0' };
    const stream = await events(await post({ model: 'gpt-test', stream: true, tools: TOOLS, input: [USER, call, output] }));
    const items = stream.filter((event) => event.type === 'response.output_item.done').map((event) => event.item);
    assert.deepEqual(items.map((item) => [item.type, item.content?.[0]?.text]), [['message', 'All done.']]);
    assert.equal(fake.turnsServed(), 2);
  });

  test('a wrong key is 401 invalid_api_key; another route is 404; past the script is 400', async () => {
    const refused = await post({ model: 'gpt-test', stream: true, tools: TOOLS, input: [USER] }, 'sk-wrong');
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
    assert.equal(fake.requests.at(-1)?.keyMatched, false);
    const missing = await fetch(`${fake.baseUrl}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '{}' });
    assert.equal(missing.status, 404);
    const twoTurns = [USER, { type: 'message', role: 'assistant', content: [] }, USER, { type: 'function_call', name: 'x', arguments: '{}', call_id: 'c' }];
    const past = await post({ model: 'gpt-test', stream: true, tools: TOOLS, input: twoTurns });
    assert.equal(past.status, 400);
  });
});
