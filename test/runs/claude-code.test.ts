import assert from 'node:assert/strict';
import { realpath } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { gitLabWorkScript, startFakeAnthropic, type FakeAnthropic } from '../../testing/fake-anthropic/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { assertGitLabWorkListed, assertNoSecretLeaked, runLogText, runToEnd as runToEndAs, watchArgv, AGENT_TEST_TIMEOUT_MS } from '../support/agent-runs.ts';
import { EXAMPLES_DIR, startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

/** The real Claude Code CLI from the npm package (a native binary its postinstall put in place), installed by testing/agents/install.ts. */
const CLAUDE_PACKAGE = fileURLToPath(new URL('../../node_modules/.forgelink-agents/node_modules/@anthropic-ai/claude-code', import.meta.url));
const API_KEY = `sk-ant-api03-${'k'.repeat(20)}-test`;
const TASK = 'Fix the README, then open a merge request and file an issue for a review.';

describe('Claude Code (the real CLI from npm) works on a GitLab project inside a forgelink run', () => {
  let gitlab: FakeGitLab;
  let anthropic: FakeAnthropic;
  let forgelink: TestForgelink;
  let alice: TestUser;
  /** Each test works on its own project: outputs are what the account made there since the run began. */
  const projects = new Map<string, number>();
  let gitlabToken: string;
  let connectionId: string;
  let claude: string;

  const runToEnd = (body: Record<string, unknown>) => runToEndAs(forgelink, alice, body);
  const logText = (runId: string) => runLogText(forgelink, alice, runId);

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    const botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    for (const project of ['acme/app', 'acme/web']) {
      projects.set(project, gitlab.addProject({ path: project, members: [{ userId: botId, accessLevel: 30 }] }).id);
    }
    gitlabToken = gitlab.addToken(botId, { scopes: ['api'], expiresAt: '2027-06-30' });
    anthropic = await startFakeAnthropic({ apiKey: API_KEY, script: gitLabWorkScript() });
    claude = `${await realpath(CLAUDE_PACKAGE)}/bin/claude.exe`;
    // The operator's claude-code profile: the npm package's binary, the stand-in as the model API gateway (whose
    // origin then joins every run's allowlist). The key is alice's secret ANTHROPIC_API_KEY, as the profile needs.
    const agents = {
      'claude-code': {
        command: [claude, '-p', '{task}', '--output-format', 'stream-json', '--verbose', '--permission-mode', 'bypassPermissions'],
        env: { ANTHROPIC_BASE_URL: anthropic.baseUrl },
      },
    };
    forgelink = await startForgelink({
      runs: { sandboxMounts: [EXAMPLES_DIR, await realpath(CLAUDE_PACKAGE)], userHostPatterns: [anthropic.origin] },
      agents: JSON.stringify(agents),
    });
    alice = await forgelink.addUser('alice');
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token: gitlabToken });
    assert.equal(created.status, 201, created.text);
    connectionId = created.json.id;
  });
  after(async () => {
    await forgelink?.close();
    await anthropic?.close();
    await gitlab?.close();
  });

  /** Runs `during` while watching every host process's argv for the model key and the GitLab token. */
  async function watchSecrets(during: () => Promise<any>): Promise<{ run: any; leaks: string[] }> {
    const watched = await watchArgv([API_KEY, gitlabToken], during);
    return { run: watched.value, leaks: watched.leaks };
  }

  /** What every Claude Code run here must show: the turns it asked for, what GitLab now holds, no leaked secret. */
  async function assertClaudeDidTheWork(run: any, log: string, argvLeaks: string[]): Promise<void> {
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    assert.equal(run.exitCode, 0);
    const projectId = projects.get(run.projectPath) as number;
    const branchName = `claude/${run.id}`;

    // Claude Code asked the stand-in for every turn with the key, and sent back what its Bash tool printed.
    const messages = anthropic.requests.filter((request) => request.path === '/v1/messages' && JSON.stringify(request.body).includes(TASK));
    assert.ok(messages.length >= 4, JSON.stringify(anthropic.requests.map((request) => request.path)));
    for (const request of messages) {
      assert.equal(request.keyMatched, true);
      assert.equal(request.anthropicVersion, '2023-06-01');
      assert.equal(request.body?.stream, true);
    }
    const toolResults = messages.map((request) => JSON.stringify(request.body?.messages.at(-1) ?? null));
    assert.ok(toolResults.some((text) => text.includes('tool_result') && text.includes(`Switched to a new branch '${branchName}'`)));
    assert.ok(toolResults.some((text) => text.includes('tool_result') && text.includes(`\\"source_branch\\":\\"${branchName}\\"`)));
    assert.match(log, /Done: pushed the fix, opened a merge request and filed an issue\./);

    // forgelink found what the agent made on GitLab.
    assertGitLabWorkListed(run, gitlab, projectId, branchName);
    assert.ok(run.egress.allowed.includes(anthropic.origin), JSON.stringify(run.egress));
    // CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC keeps it from calling api.anthropic.com for anything else.
    assert.deepEqual(run.egress.refused, []);

    // Both credentials were brokered: Claude Code and its Bash tool held surrogates, and the stand-in still got the real key.
    assert.equal(run.credentials, 'brokered');
    assert.match(log, /^Credentials brokered: the sandbox holds surrogates for GITLAB_TOKEN, ANTHROPIC_API_KEY;/m);

    // Neither the model key nor the GitLab token is in any argv, log line, response or database row.
    await assertNoSecretLeaked(forgelink, run, log, [API_KEY, gitlabToken], argvLeaks);
  }

  test('the claude-code profile without the ANTHROPIC_API_KEY secret is refused before it is queued, naming it', async () => {
    const refused = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId, project: 'acme/app', agent: 'claude-code', task: TASK });
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.error.code, 'secret_not_found');
    assert.equal(refused.json.error.field, 'agent');
    assert.match(refused.json.error.message, /ANTHROPIC_API_KEY.*forgelink secrets set ANTHROPIC_API_KEY/);
    assert.deepEqual((await forgelink.call(alice, 'GET', '/api/v1/runs')).json.runs, []);
    // Bound to the stand-in's origin: in a brokered run (the default) the broker sends the real key there and nowhere else.
    const stored = await forgelink.call(alice, 'PUT', '/api/v1/secrets/ANTHROPIC_API_KEY', { value: API_KEY, hosts: [anthropic.origin] });
    assert.ok([200, 201].includes(stored.status), stored.text);
  });

  test('as a custom command: claude -p pushes a branch, opens a merge request and files an issue; forgelink lists them', { timeout: AGENT_TEST_TIMEOUT_MS }, async () => {
    const watched = await watchSecrets(() =>
      runToEnd({
        connectionId,
        project: 'acme/app',
        allowHosts: [anthropic.origin],
        secrets: ['ANTHROPIC_API_KEY'],
        command: [
          'sh',
          '-c',
          `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 ANTHROPIC_BASE_URL=${anthropic.baseUrl} exec "$@"`,
          'sh',
          claude,
          '-p',
          TASK,
          '--output-format',
          'stream-json',
          '--verbose',
          '--allowedTools',
          'Bash',
        ],
      }),
    );
    const run = watched.run;
    const log = await logText(run.id);
    await assertClaudeDidTheWork(run, log, watched.leaks);
    assert.equal(run.agent, 'custom');
    // A custom command's output is shown as it came: Claude Code's stream-json events.
    assert.match(log, /^\{.*"type":"result".*\}$/m);
  });

  test('as the claude-code profile: POST /runs {agent, task}; its gateway host is allowed, its stream shown as readable lines', { timeout: AGENT_TEST_TIMEOUT_MS }, async () => {
    const agents = await forgelink.call(alice, 'GET', '/api/v1/agents');
    assert.deepEqual(agents.json.agents.find((agent: { name: string }) => agent.name === 'claude-code'), {
      name: 'claude-code',
      image: 'host',
      secrets: ['ANTHROPIC_API_KEY'],
      hosts: [anthropic.origin],
    });
    // Bound to no host, the profile's secret goes to the profile's model API: here the gateway's origin.
    const unbound = await forgelink.call(alice, 'PUT', '/api/v1/secrets/ANTHROPIC_API_KEY', { value: API_KEY, hosts: [] });
    assert.equal(unbound.status, 200, unbound.text);
    const { run, leaks } = await watchSecrets(() => runToEnd({ connectionId, project: 'acme/web', agent: 'claude-code', task: TASK }));
    const log = await logText(run.id);
    await assertClaudeDidTheWork(run, log, leaks);
    assert.equal(run.agent, 'claude-code');
    assert.deepEqual(run.image, { ref: 'host', digest: null });
    assert.deepEqual(run.allowHosts, []);
    assert.deepEqual(run.secrets, ['ANTHROPIC_API_KEY']);
    assert.match(log, /^Secrets given as environment variables: ANTHROPIC_API_KEY$/m);
    assert.equal(run.command[run.command.indexOf('-p') + 1], TASK);
    assert.match(log, /^Claude: I will fix the README on a new branch\.$/m);
    assert.match(log, /^→ Bash: git checkout -b "claude\/\$FORGELINK_RUN_ID"/m);
    assert.match(log, /^← $\n^ {2}Switched to a new branch/m);
    assert.match(log, /^Claude Code finished, 4 turns, cost \$\d+\.\d{4}, \d+\.\d s$/m);
    assert.doesNotMatch(log, /^\{"type":/m);
  });
});
