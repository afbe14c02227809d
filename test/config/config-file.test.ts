import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ConfigError, readConfig } from '../../src/config/index.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'forgelink-config-file-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(name: string, content: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, content);
  return file;
}

function refusal(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail('expected a ConfigError');
}

test('the config file adds and changes agent profiles, OAuth applications and the run policy as their variables would', async () => {
  const file = await configFile(
    'forgelink.json',
    JSON.stringify({
      agents: { 'claude-code': { env: { ANTHROPIC_BASE_URL: 'https://llm.corp.example' }, hosts: ['llm.corp.example:443'] } },
      gitlabOAuthApps: [{ baseUrl: 'https://gitlab.example.com', clientId: 'app-id' }],
      policy: { allowTags: true },
    }),
  );
  const config = readConfig({ FORGELINK_CONFIG_FILE: file }, dir);
  const claude = config.agents.find((agent) => agent.name === 'claude-code');
  assert.equal(claude?.env.ANTHROPIC_BASE_URL, 'https://llm.corp.example');
  assert.ok(claude?.hosts.includes('llm.corp.example:443'), JSON.stringify(claude?.hosts));
  assert.deepEqual(config.gitlabOAuthApps.map((app) => app.baseUrl), ['https://gitlab.example.com']);
  assert.equal(config.policy.allowTags, true);
  assert.equal(config.policy.allowMerge, false);
  // A path relative to the working directory, as the other file settings are.
  assert.equal(readConfig({ FORGELINK_CONFIG_FILE: 'forgelink.json' }, dir).policy.allowTags, true);
});

test('a config file that cannot be used stops the start, naming FORGELINK_CONFIG_FILE, the file and what is wrong', async () => {
  const missing = refusal(() => readConfig({ FORGELINK_CONFIG_FILE: path.join(dir, 'absent.json') }, dir));
  assert.equal(missing.variable, 'FORGELINK_CONFIG_FILE');
  assert.match(missing.message, /cannot read .*absent\.json \(ENOENT\)/);

  const broken = await configFile('broken.json', '{"agents": ');
  assert.match(refusal(() => readConfig({ FORGELINK_CONFIG_FILE: broken }, dir)).message, /broken\.json is not valid JSON/);

  const unknownKey = await configFile('unknown.json', JSON.stringify({ agent: {} }));
  assert.match(refusal(() => readConfig({ FORGELINK_CONFIG_FILE: unknownKey }, dir)).message, /unknown\.json: .*keys it may hold: agents, gitlabOAuthApps, policy/);

  const wrongType = await configFile('wrong-type.json', JSON.stringify({ gitlabOAuthApps: { baseUrl: 'https://gitlab.com' } }));
  assert.match(refusal(() => readConfig({ FORGELINK_CONFIG_FILE: wrongType }, dir)).message, /wrong-type\.json: gitlabOAuthApps: /);

  // The value inside is judged exactly as the variable's would be.
  const badPolicy = await configFile('bad-policy.json', JSON.stringify({ policy: { allowEverything: true } }));
  assert.equal(refusal(() => readConfig({ FORGELINK_CONFIG_FILE: badPolicy }, dir)).variable, 'FORGELINK_POLICY');
});

test('a setting in both the config file and its variable is refused rather than one silently winning', async () => {
  const file = await configFile('both.json', JSON.stringify({ policy: { allowMerge: true } }));
  const both = refusal(() => readConfig({ FORGELINK_CONFIG_FILE: file, FORGELINK_POLICY: '{"allowMerge":false}' }, dir));
  assert.match(both.message, /sets "policy" and FORGELINK_POLICY is set too; keep one of them/);
});
