import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { gitLabWorkScript, startFakeAnthropic, type FakeAnthropic } from '../../testing/fake-anthropic/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { argvHolding, ok } from '../support/cli-checks.ts';
import { referenceAgentImage } from '../support/agent-image.ts';
import { forgelinkCli, startServerProcess, type Result, type RunningServer } from '../support/processes.ts';
import { AGENT_RUN_SECONDS, AGENT_TEST_TIMEOUT_MS } from '../support/agent-runs.ts';

const API_KEY = `sk-ant-api03-${'i'.repeat(20)}-image`;
const TASK = 'Fix the README, then open a merge request and file an issue for a review.';
/** A cold build downloads Debian and npm packages: minutes (the README says how long). */
const BUILD_TIMEOUT_MS = 30 * 60_000;

describe('the README path on the reference agent image: build it, store the key, forgelink run --agent claude-code (real recipe, real Claude Code)', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let gitlab: FakeGitLab;
  let anthropic: FakeAnthropic;
  let server: RunningServer;
  let connectionId: string;
  let gitlabToken: string;
  let layout: string;
  let imageRef: string;

  const cli = (args: string[], stdin?: string): Promise<Result> => forgelinkCli(args, { env, ...(stdin === undefined ? {} : { stdin }) });

  before(
    async () => {
      // The recipe's own build, cached in the user's cache directory by its hash (test/support/agent-image.ts).
      const started = performance.now();
      const built = await referenceAgentImage((line) => process.stderr.write(`[agent image] ${line}\n`));
      process.stderr.write(`[agent image] ${built.cached ? 'cached' : `built in ${((performance.now() - started) / 1000).toFixed(0)} s`}: ${built.ref}\n`);
      layout = built.ref.slice('oci:'.length).replace(/:agent$/, '');
      imageRef = built.ref;

      home = await mkdtemp(path.join(tmpdir(), 'forgelink-agent-image-'));
      gitlab = await startFakeGitLab({ tls: true });
      const bot = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
      gitlab.addProject({ path: 'acme/app', members: [{ userId: bot, accessLevel: 30 }] });
      anthropic = await startFakeAnthropic({ apiKey: API_KEY, script: gitLabWorkScript() });
      env = {
        PATH: process.env.PATH,
        HOME: home,
        XDG_CONFIG_HOME: path.join(home, 'config'),
        FORGELINK_DATA_DIR: path.join(home, 'data'),
        FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
        // The operator's one line: the claude-code profile on the built image, its model API at the stand-in.
        FORGELINK_AGENTS: JSON.stringify({ 'claude-code': { image: imageRef, env: { ANTHROPIC_BASE_URL: anthropic.baseUrl } } }),
      };
      gitlabToken = gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-06-30' });
    },
    { timeout: BUILD_TIMEOUT_MS },
  );
  after(async () => {
    await server?.stop();
    await anthropic?.close();
    await gitlab?.close();
    if (home !== undefined) await rm(home, { recursive: true, force: true });
  });

  test('forgelink images build agent reuses the recipe\'s build and puts the image in the store', { timeout: BUILD_TIMEOUT_MS }, async () => {
    const result = ok(await cli(['images', 'build', 'agent', '--output', layout, '--json']));
    const built = JSON.parse(result.stdout);
    assert.equal(built.cached, true, 'the same recipe and inputs: no second build');
    assert.equal(built.ref, imageRef);
    assert.match(built.image.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(built.image.unpacked, true);
    const listed = JSON.parse(ok(await cli(['images', 'list', '--json'])).stdout).images;
    assert.deepEqual(listed.map((image: { ref: string }) => image.ref), [imageRef]);
  });

  test('the image holds Node 24, Claude Code and Codex at the pinned versions, and git, curl, python3', async () => {
    const apiKey = JSON.parse(ok(await cli(['admin', 'user', 'add', 'alice', '--json'])).stdout).apiKey;
    server = await startServerProcess(env);
    ok(await cli(['login', '--server', server.url], `${apiKey}\n`));
    connectionId = JSON.parse(
      ok(await cli(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string, '--token-stdin', '--json'], gitlabToken)).stdout,
    ).id;
    const probe = 'node --version; claude --version; codex --version; git --version; curl --version | head -n 1; python3 --version; cat /etc/debian_version';
    const result = ok(await cli(['run', '--connection', connectionId, '--project', 'acme/app', '--image', imageRef, '--json', '--', 'sh', '-c', probe]));
    const run = JSON.parse(result.stdout);
    assert.equal(run.status, 'succeeded', result.stderr);
    assert.equal(run.image.ref, imageRef);
    assert.match(result.stderr, /^v24\.\d+\.\d+$/m);
    assert.match(result.stderr, /^2\.1\.332 \(Claude Code\)$/m);
    assert.match(result.stderr, /codex-cli 0\.171\.0/);
    assert.match(result.stderr, /^git version /m);
    assert.match(result.stderr, /^curl \d/m);
    assert.match(result.stderr, /^Python 3\./m);
    assert.match(result.stderr, /^12\.\d+$/m);
  });

  test('with the key stored, forgelink run --agent claude-code "task" gets a merge request from the real Claude Code in the image', { timeout: AGENT_TEST_TIMEOUT_MS }, async () => {
    ok(await cli(['secrets', 'set', 'ANTHROPIC_API_KEY'], `${API_KEY}\n`));
    const watched = await argvHolding(API_KEY, () =>
      argvHolding(gitlabToken, () => cli(['run', '--agent', 'claude-code', '--connection', connectionId, '--project', 'acme/app', '--timeout', `${AGENT_RUN_SECONDS}s`, '--json', TASK])),
    );
    const result = watched.value.value;
    const run = JSON.parse(ok(result).stdout);
    assert.equal(run.status, 'succeeded', result.stderr);
    assert.equal(run.agent, 'claude-code');
    assert.equal(run.image.ref, imageRef);
    assert.match(run.image.digest, /^sha256:/);
    assert.equal(run.outputs.mergeRequests.length, 1, result.stderr);
    assert.equal(run.outputs.mergeRequests[0].sourceBranch, `claude/${run.id}`);
    assert.equal(run.outputs.issues.length, 1);
    assert.match(result.stderr, /^Claude Code finished, 4 turns, cost \$\d+\.\d{4}, \d+\.\d s$/m);
    const messages = anthropic.requests.filter((request) => request.path === '/v1/messages' && JSON.stringify(request.body).includes(TASK));
    assert.ok(messages.length >= 4 && messages.every((request) => request.keyMatched));
    assert.deepEqual([...watched.leaks, ...watched.value.leaks], [], 'a secret appeared in a process argument list');
    assert.ok(!result.stderr.includes(API_KEY) && !result.stderr.includes(gitlabToken));
    assert.ok(!server.output().includes(API_KEY) && !server.output().includes(gitlabToken));
  });
});
