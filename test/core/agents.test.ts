import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUILT_IN_AGENTS, InputError, agentCommand, findAgent } from '../../src/core/index.ts';
import { readAgentProfiles } from '../../src/config/agents.ts';

const claude = findAgent(BUILT_IN_AGENTS, 'claude-code');
const custom = findAgent(BUILT_IN_AGENTS, 'custom');

test('the built-in profiles: claude-code and codex take a task, need their key and reach their API; custom runs your command', () => {
  assert.deepEqual(
    BUILT_IN_AGENTS.map((profile) => [profile.name, profile.image, profile.secrets, profile.hosts]),
    [
      ['claude-code', 'host', ['ANTHROPIC_API_KEY'], ['api.anthropic.com:443']],
      ['codex', 'host', ['OPENAI_API_KEY'], ['api.openai.com:443']],
      ['custom', 'host', [], []],
    ],
  );
  assert.deepEqual(agentCommand(claude, { task: '  fix the failing test ', command: undefined }), [
    'claude',
    '-p',
    'fix the failing test',
    '--output-format',
    'stream-json',
    '--verbose',
    '--permission-mode',
    'bypassPermissions',
  ]);
  assert.deepEqual(agentCommand(findAgent(BUILT_IN_AGENTS, 'codex'), { task: 'add a test; rm -rf / "quoted"', command: undefined }).at(-1), 'add a test; rm -rf / "quoted"');
  assert.deepEqual(agentCommand(custom, { task: undefined, command: ['./agent', '--go'] }), ['./agent', '--go']);
});

for (const [name, profile, input, code, field] of [
  ['an empty task', claude, { task: ' ', command: undefined }, 'invalid_task', 'task'],
  ['no task', claude, { task: undefined, command: undefined }, 'invalid_task', 'task'],
  ['a command for a profile', claude, { task: 'x', command: ['sh'] }, 'invalid_command', 'command'],
  ['custom without a command', custom, { task: undefined, command: undefined }, 'invalid_command', 'command'],
  ['custom with a task', custom, { task: 'x', command: ['sh'] }, 'invalid_task', 'task'],
] as const) {
  test(`refuses ${name}, naming the field`, () => {
    assert.throws(() => agentCommand(profile, input as never), (error: unknown) => error instanceof InputError && error.code === code && error.field === field);
  });
}

test('an unknown profile is refused naming the field and the profiles there are', () => {
  assert.throws(
    () => findAgent(BUILT_IN_AGENTS, 'cladue'),
    (error: unknown) => error instanceof InputError && error.code === 'unknown_agent' && error.field === 'agent' && /claude-code, codex, custom/.test(error.message),
  );
});

test('FORGELINK_AGENTS: a gateway base URL becomes the allowed host; explicit hosts win; env is added to', () => {
  const profiles = readAgentProfiles(
    JSON.stringify({
      'claude-code': { env: { ANTHROPIC_BASE_URL: 'https://llm.corp/anthropic' } },
      codex: { env: { OPENAI_BASE_URL: 'https://gw.corp:8443/v1' }, hosts: ['gw.corp:8443', 'auth.corp'] },
      aider: { image: 'oci:/srv/aider', command: ['aider', '--message', '{task}'], secrets: ['OPENAI_API_KEY'], hosts: ['api.openai.com'] },
    }),
  );
  assert.ok(Array.isArray(profiles));
  const byName = new Map(profiles.map((profile) => [profile.name, profile]));
  assert.deepEqual(byName.get('claude-code')?.hosts, ['llm.corp:443']);
  assert.equal(byName.get('claude-code')?.env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, '1');
  assert.equal(byName.get('claude-code')?.env.ANTHROPIC_BASE_URL, 'https://llm.corp/anthropic');
  assert.deepEqual(byName.get('claude-code')?.secrets, ['ANTHROPIC_API_KEY']);
  assert.deepEqual(byName.get('codex')?.hosts, ['gw.corp:8443', 'auth.corp']);
  assert.deepEqual(byName.get('aider')?.command, ['aider', '--message', '{task}']);
  assert.equal(byName.get('aider')?.image, 'oci:/srv/aider');
  assert.deepEqual([...byName.keys()], ['claude-code', 'codex', 'custom', 'aider']);
});

for (const [raw, expected] of [
  ['{', /not valid JSON/],
  ['{"claude-code":{"comand":["x"]}}', /claude-code/],
  ['{"new-agent":{"hosts":["a.example"]}}', /^new-agent: command: must not be empty/],
  ['{"new":{"command":["x","--go"]}}', /\{task\}/],
  ['{"claude-code":{"hosts":["not a host"]}}', /hosts: "not a host"/],
  ['{"claude-code":{"env":{"ANTHROPIC_BASE_URL":"llm.corp"}}}', /ANTHROPIC_BASE_URL: "llm.corp" is not an http\(s\) URL/],
  ['{"Bad Name":{"command":["x","{task}"]}}', /name must be lower-case/],
  ['{"claude-code":{"image":"oci:relative/agent"}}', /^claude-code: image: "oci:relative\/agent" is not an image reference: the path must be absolute/],
  ['{"codex":{"image":"ubuntu"}}', /^codex: image: .*unknown transport/],
] as const) {
  test(`FORGELINK_AGENTS ${raw} is refused with a message naming what is wrong`, () => {
    const result = readAgentProfiles(raw);
    assert.ok(!Array.isArray(result));
    assert.match(`${result.path === '' ? '' : `${result.path}: `}${result.message}`, expected);
  });
}
