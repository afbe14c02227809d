import assert from 'node:assert/strict';
import { realpath } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { codexCommand } from '../../src/core/index.ts';
import { codexGitLabWorkScript, startFakeOpenAi, type FakeOpenAi } from '../../testing/fake-openai/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { assertGitLabWorkListed, assertNoSecretLeaked, runLogText, runToEnd, watchArgv, AGENT_TEST_TIMEOUT_MS } from '../support/agent-runs.ts';
import { EXAMPLES_DIR, startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

/** The real Codex CLI from the npm package `@openai/codex` (a static binary in its platform package). */
const CODEX_PACKAGE = fileURLToPath(new URL('../../node_modules/@openai/codex-linux-x64', import.meta.url));
const API_KEY = `sk-proj-${'k'.repeat(24)}-test`;
const TASK = 'Fix the README, then open a merge request and file an issue for a review.';

describe('Codex (the real CLI from npm) works on a GitLab project inside a forgelink run', () => {
  let gitlab: FakeGitLab;
  let openai: FakeOpenAi;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let projectId: number;
  let gitlabToken: string;
  let connectionId: string;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    const botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    projectId = gitlab.addProject({ path: 'acme/app', members: [{ userId: botId, accessLevel: 30 }] }).id;
    gitlabToken = gitlab.addToken(botId, { scopes: ['api'], expiresAt: '2027-06-30' });
    openai = await startFakeOpenAi({ apiKey: API_KEY, script: codexGitLabWorkScript() });
    const packageDir = await realpath(CODEX_PACKAGE);
    const codex = `${packageDir}/vendor/x86_64-unknown-linux-musl/bin/codex`;
    // The operator's codex profile: the npm package's binary, the stand-in as the model API gateway (whose origin
    // then joins every run's allowlist), and a model outside Codex's catalogue, for which Codex offers its
    // shell as the function tool `exec_command` that the stand-in's script calls.
    const agents = { codex: { command: codexCommand(codex, ['-m', 'gpt-test']), env: { OPENAI_BASE_URL: openai.baseUrl } } };
    forgelink = await startForgelink({
      runs: { sandboxMounts: [EXAMPLES_DIR, packageDir], userHostPatterns: [openai.origin] },
      agents: JSON.stringify(agents),
    });
    alice = await forgelink.addUser('alice');
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token: gitlabToken });
    assert.equal(created.status, 201, created.text);
    connectionId = created.json.id;
  });
  after(async () => {
    await forgelink?.close();
    await openai?.close();
    await gitlab?.close();
  });

  test('the codex profile without the OPENAI_API_KEY secret is refused before it is queued, naming it', async () => {
    const refused = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId, project: 'acme/app', agent: 'codex', task: TASK });
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.error.code, 'secret_not_found');
    assert.match(refused.json.error.message, /OPENAI_API_KEY.*forgelink secrets set OPENAI_API_KEY/);
    assert.deepEqual((await forgelink.call(alice, 'GET', '/api/v1/runs')).json.runs, []);
    // Bound to no host, the profile's key goes to the profile's model API only: here the stand-in, through the broker.
    const stored = await forgelink.call(alice, 'PUT', '/api/v1/secrets/OPENAI_API_KEY', { value: API_KEY, hosts: [] });
    assert.ok([200, 201].includes(stored.status), stored.text);
  });

  test('as the codex profile: Codex\'s shell tool pushes a branch, opens a merge request and files an issue; forgelink lists them', { timeout: AGENT_TEST_TIMEOUT_MS }, async () => {
    const agents = await forgelink.call(alice, 'GET', '/api/v1/agents');
    assert.deepEqual(agents.json.agents.find((agent: { name: string }) => agent.name === 'codex').hosts, [openai.origin]);

    const watched = await watchArgv([API_KEY, gitlabToken], () => runToEnd(forgelink, alice, { connectionId, project: 'acme/app', agent: 'codex', task: TASK }));
    const run = watched.value;
    const log = await runLogText(forgelink, alice, run.id);
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    assert.equal(run.agent, 'codex');
    assert.deepEqual(run.secrets, ['OPENAI_API_KEY']);
    assert.equal(run.command.at(-1), TASK);
    const branchName = `codex/${run.id}`;

    // Codex asked the stand-in for every turn with the key, streamed, and sent back what its shell printed.
    const turns = openai.requests.filter((request) => request.path === '/v1/responses' && JSON.stringify(request.body).includes(TASK));
    assert.ok(turns.length >= 4, JSON.stringify(openai.requests.map((request) => `${request.method} ${request.path}`)));
    for (const request of turns) {
      assert.equal(request.keyMatched, true);
      assert.equal(request.body?.stream, true);
      assert.ok(request.body?.tools?.some((tool) => tool.name === 'exec_command'));
    }
    assert.equal(openai.turnsServed(), 4);
    const outputs = turns.map((request) => JSON.stringify(request.body?.input.filter((item) => item.type === 'function_call_output') ?? []));
    assert.ok(outputs.some((text) => text.includes(`Switched to a new branch '${branchName}'`)), outputs.join('\n'));
    assert.ok(outputs.some((text) => text.includes(`\\"source_branch\\":\\"${branchName}\\"`)), outputs.join('\n'));
    assert.match(log, /Done: pushed the fix, opened a merge request and filed an issue\./);

    // forgelink found what the agent made on GitLab.
    assertGitLabWorkListed(run, gitlab, projectId, branchName);
    assert.ok(run.egress.allowed.includes(openai.origin), JSON.stringify(run.egress));
    assert.deepEqual(run.egress.refused, [], 'Codex tried to reach a host besides its model API');

    // Neither the model key nor the GitLab token is in any argv, log line, response or database row.
    await assertNoSecretLeaked(forgelink, run, log, [API_KEY, gitlabToken], watched.leaks);
  });
});
