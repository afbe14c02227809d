import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startFakeAnthropic, type FakeAnthropic, type ScriptTurn } from '../../testing/fake-anthropic/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { EXAMPLES_DIR, startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

/** The real Claude Code CLI from the npm package (a native binary its postinstall put in place). */
const CLAUDE_PACKAGE = fileURLToPath(new URL('../../node_modules/@anthropic-ai/claude-code', import.meta.url));
const API_KEY = `sk-ant-api03-${'k'.repeat(20)}-test`;
const BRANCH = 'claude/fix-readme';

/** What the scripted model tells Claude Code to do, one Bash tool call per turn, through Claude Code's own tools. */
function script(): ScriptTurn[] {
  const api = '"$GITLAB_OAUTH_BASE_URL/api/v4/projects/acme%2Fapp';
  // The header comes on stdin (`-H @-`) from the shell's builtin printf, so the token is in no argv.
  const curl = 'printf "PRIVATE-TOKEN: %s\\n" "$GITLAB_TOKEN" | curl -sS --fail-with-body -H @-';
  return [
    {
      text: 'I will fix the README on a new branch.',
      tool: 'Bash',
      input: {
        command: `git checkout -b ${BRANCH} && echo "Fixed by Claude Code." >> README.md && git commit -qam "Fix the README" && git push -q origin ${BRANCH}`,
        description: 'Commit the fix and push a branch',
      },
    },
    {
      tool: 'Bash',
      input: {
        command: `${curl} -X POST ${api}/merge_requests" --data-urlencode "source_branch=${BRANCH}" --data-urlencode "target_branch=main" --data-urlencode "title=Fix the README"`,
        description: 'Open a merge request',
      },
    },
    {
      tool: 'Bash',
      input: {
        command: `${curl} -X POST ${api}/issues" --data-urlencode "title=README needs a review" --data-urlencode "description=Filed by Claude Code"`,
        description: 'File an issue',
      },
    },
    { text: 'Done: pushed the fix, opened a merge request and filed an issue.' },
  ];
}

describe('Claude Code (the real CLI from npm) works on a GitLab project inside a forgelink run', () => {
  let gitlab: FakeGitLab;
  let anthropic: FakeAnthropic;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let projectId: number;
  let gitlabToken: string;
  let connectionId: string;
  let keyDir: string | undefined;
  let keyFile: string;

  async function runToEnd(body: Record<string, unknown>): Promise<any> {
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', body);
    assert.equal(started.status, 201, started.text);
    for (;;) {
      const current = await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async function logText(runId: string): Promise<string> {
    const response = await forgelink.call(alice, 'GET', `/api/v1/runs/${runId}/log`);
    return response.json.entries.map((entry: { text: string }) => entry.text).join('');
  }

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    const botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    projectId = gitlab.addProject({ path: 'acme/app', members: [{ userId: botId, accessLevel: 30 }] }).id;
    gitlabToken = gitlab.addToken(botId, { scopes: ['api'], expiresAt: '2027-06-30' });
    anthropic = await startFakeAnthropic({ apiKey: API_KEY, script: script() });
    // The key reaches the agent from a read-only file, so it is in no argv, run record or log line.
    keyDir = await mkdtemp(path.join(tmpdir(), 'forgelink-claude-key-'));
    keyFile = path.join(keyDir, 'anthropic-key');
    await writeFile(keyFile, API_KEY);
    forgelink = await startForgelink({
      runs: { sandboxMounts: [EXAMPLES_DIR, await realpath(CLAUDE_PACKAGE), keyDir], extraHosts: [anthropic.origin] },
    });
    alice = await forgelink.addUser('alice');
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token: gitlabToken });
    assert.equal(created.status, 201, created.text);
    connectionId = created.json.id;
  });
  after(async () => {
    if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true });
    await forgelink?.close();
    await anthropic?.close();
    await gitlab?.close();
  });

  test('claude -p pushes a branch, opens a merge request and files an issue; forgelink lists them as outputs', async () => {
    const claude = `${await realpath(CLAUDE_PACKAGE)}/bin/claude.exe`;
    const scan = scanArgv([API_KEY, gitlabToken]);
    const run = await runToEnd({
      connectionId,
      project: 'acme/app',
      command: [
        'sh',
        '-c',
        `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 ANTHROPIC_BASE_URL=${anthropic.baseUrl} ANTHROPIC_API_KEY="$(cat "$0")" exec "$@"`,
        keyFile,
        claude,
        '-p',
        'Fix the README, then open a merge request and file an issue for a review.',
        '--output-format',
        'stream-json',
        '--verbose',
        '--allowedTools',
        'Bash',
      ],
    });
    const argvLeaks = await scan.stop();
    const log = await logText(run.id);
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    assert.equal(run.exitCode, 0);

    // Claude Code asked the stand-in for every turn with the key, and sent back what its Bash tool printed.
    assert.equal(anthropic.turnsServed(), 4);
    const messages = anthropic.requests.filter((request) => request.path === '/v1/messages');
    assert.ok(messages.length >= 4, JSON.stringify(anthropic.requests.map((request) => request.path)));
    for (const request of messages) {
      assert.equal(request.keyMatched, true);
      assert.equal(request.anthropicVersion, '2023-06-01');
      assert.equal(request.body?.stream, true);
    }
    const toolResults = messages.map((request) => JSON.stringify(request.body?.messages.at(-1) ?? null));
    assert.ok(toolResults.some((text) => text.includes('tool_result') && text.includes(`Switched to a new branch '${BRANCH}'`)));
    assert.ok(toolResults.some((text) => text.includes('tool_result') && text.includes('\\"source_branch\\":\\"claude/fix-readme\\"')));
    assert.match(log, /Done: pushed the fix, opened a merge request and filed an issue\./);

    // forgelink found what the agent made on GitLab.
    const pushed = gitlab.branches(projectId).find((branch) => branch.name === BRANCH);
    assert.ok(pushed);
    assert.deepEqual(
      run.outputs.branches.map((branch: { name: string; created: boolean; sha: string }) => [branch.name, branch.created, branch.sha]),
      [[BRANCH, true, pushed.sha]],
    );
    const [mergeRequest] = gitlab.mergeRequests(projectId);
    assert.equal(run.outputs.mergeRequests.length, 1);
    assert.equal(run.outputs.mergeRequests[0].iid, mergeRequest?.iid);
    assert.equal(run.outputs.mergeRequests[0].sourceBranch, BRANCH);
    assert.equal(run.outputs.mergeRequests[0].targetBranch, 'main');
    assert.deepEqual(
      run.outputs.issues.map((issue: { title: string }) => issue.title),
      gitlab.issues(projectId).map((issue) => issue.title),
    );
    assert.deepEqual(run.outputs.issues.map((issue: { title: string }) => issue.title), ['README needs a review']);
    assert.ok(run.egress.allowed.includes(anthropic.origin), JSON.stringify(run.egress));
    // CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC keeps it from calling api.anthropic.com for anything else.
    assert.deepEqual(run.egress.refused, []);

    // Neither the model key nor the GitLab token is in any argv, log line, response or database row.
    assert.deepEqual(argvLeaks, [], 'a secret appeared in a process argument list');
    const rows: string[] = [];
    for (const table of await forgelink.storage.db.introspection.getTables()) {
      rows.push(JSON.stringify(await forgelink.storage.db.selectFrom(table.name as never).selectAll().execute()));
    }
    const everything = [log, JSON.stringify(run), forgelink.logs.join(''), ...rows].join('\n');
    assert.ok(rows.length > 5);
    for (const secret of [API_KEY, gitlabToken]) assert.ok(!everything.includes(secret), 'a secret leaked into a log, response or row');
  });
});

/** Watches every process on the host until stopped; returns the argv lists that held one of `secrets`. */
function scanArgv(secrets: string[]): { stop(): Promise<string[]> } {
  let scanning = true;
  const leaks: string[] = [];
  const done = (async () => {
    while (scanning) {
      for (const pid of await readdir('/proc').catch(() => [] as string[])) {
        if (!/^\d+$/.test(pid)) continue;
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
        if (secrets.some((secret) => cmdline.includes(secret))) leaks.push(cmdline.replaceAll('\0', ' '));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      scanning = false;
      await done;
      return leaks;
    },
  };
}
