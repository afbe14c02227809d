import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { labelled, sandboxApiCall } from './fixtures.ts';
import { argvHolding } from '../support/cli-checks.ts';
import { EXAMPLES_DIR, startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';

const AGENT = ['python3', path.join(EXAMPLES_DIR, 'scripted-agent.py')];
const MODEL_KEY = `sk-ant-api03-${'m'.repeat(24)}-brokered`;

/**
 * Every credential-like string the sandbox can see: its environment, every process's environ and cmdline under
 * /proc, and every readable file outside /usr (the host's read-only system tree, the same for every run). Printed
 * as JSON between markers, so the test compares them with the real values, which the sandbox is never told.
 */
const SCAN = String.raw`
import json, os, re
pattern = re.compile(rb'(?:glpat-[A-Za-z0-9_-]{20,}|sk-ant-[A-Za-z0-9_-]{10,})')
found, files = set(), 0
def scan(data):
    for match in pattern.findall(data):
        found.add(match.decode())
scan('\n'.join('%s=%s' % pair for pair in os.environ.items()).encode())
for root, dirs, names in os.walk('/', followlinks=False):
    if root == '/':
        dirs[:] = [d for d in dirs if d not in ('usr', 'proc', 'sys', 'dev')]
    for name in names:
        path = os.path.join(root, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, 'rb') as handle:
                scan(handle.read(64 * 1024 * 1024))
            files += 1
        except OSError:
            pass
for pid in os.listdir('/proc'):
    if not pid.isdigit():
        continue
    for part in ('environ', 'cmdline'):
        try:
            with open('/proc/%s/%s' % (pid, part), 'rb') as handle:
                scan(handle.read())
            files += 1
        except OSError:
            pass
print('SCAN ' + json.dumps({'found': sorted(found), 'files': files}))
`;

describe('brokered runs: the sandbox holds surrogates, the run\'s proxy swaps in the real credentials (real bubblewrap, fake GitLab over HTTPS)', () => {
  let gitlab: FakeGitLab;
  let model: { server: Server; origin: string; seen: IncomingHttpHeaders[] };
  let forgelink: TestForgelink;
  let alice: TestUser;
  let botId: number;
  let projectId: number;
  let token: string;
  let connectionId: string;

  async function runToEnd(body: Record<string, unknown>): Promise<any> {
    const started = await forgelink.call(alice, 'POST', '/api/v1/runs', body);
    assert.equal(started.status, 201, started.text);
    for (;;) {
      const current = await forgelink.call(alice, 'GET', `/api/v1/runs/${started.json.id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function logText(runId: string): Promise<string> {
    const response = await forgelink.call(alice, 'GET', `/api/v1/runs/${runId}/log`);
    return response.json.entries.map((entry: { text: string }) => entry.text).join('');
  }

  let guardedId: number;
  let otherId: number;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    projectId = gitlab.addProject({ path: 'acme/broker', members: [{ userId: botId, accessLevel: 30 }] }).id;
    // Maintainer access: GitLab itself would let this account push to main; only the run's policy stops it.
    guardedId = gitlab.addProject({ path: 'acme/guarded', branches: ['feature-old', 'release/1.0'], members: [{ userId: botId, accessLevel: 40 }] }).id;
    gitlab.protectBranch(guardedId, 'release/*', { pushAccessLevel: 40, mergeAccessLevel: 40 });
    otherId = gitlab.addProject({ path: 'acme/other', members: [{ userId: botId, accessLevel: 30 }] }).id;
    // A model API stand-in on plain http: it answers with whether it got the real key.
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      const ok = req.headers['x-api-key'] === MODEL_KEY;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    model = { server, origin: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
    forgelink = await startForgelink({ runs: { userHostPatterns: [model.origin] } });
    alice = await forgelink.addUser('alice');
    token = gitlab.addToken(botId, { scopes: ['api', 'read_user'], expiresAt: '2027-06-30' });
    const created = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(created.status, 201, created.text);
    connectionId = created.json.id;
    const stored = await forgelink.call(alice, 'PUT', '/api/v1/secrets/MODEL_KEY', { value: MODEL_KEY, hosts: [model.origin] });
    assert.equal(stored.status, 201, stored.text);
  });
  after(async () => {
    await forgelink?.close();
    await new Promise((resolve) => model?.server.close(resolve));
    await gitlab?.close();
  });

  test('by default: the agent pushes a feature branch, opens a merge request and files an issue; forgelink lists them', async () => {
    const { value: run, leaks } = await argvHolding(token, () => runToEnd({ connectionId, project: 'acme/broker', command: AGENT }));
    assert.deepEqual(leaks, []);
    const log = await logText(run.id);
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    assert.equal(run.credentials, 'brokered');
    assert.match(log, /^Credentials brokered: the sandbox holds surrogates for GITLAB_TOKEN;/m);
    const branch = `agent/${run.id}`;
    assert.deepEqual(run.outputs.branches.map((b: { name: string; created: boolean }) => [b.name, b.created]), [[branch, true]]);
    assert.equal(run.outputs.branches[0].sha, gitlab.branches(projectId).find((b) => b.name === branch)?.sha);
    assert.deepEqual(run.outputs.mergeRequests.map((mr: { sourceBranch: string; detectedBy: string }) => [mr.sourceBranch, mr.detectedBy]), [[branch, 'api']]);
    assert.equal(run.outputs.issues.length, 1);
    assert.deepEqual(run.policy, { refused: [], options: { allowTags: false, allowMerge: false, readOtherProjects: false } });
    // Every write went through the broker and is in the audit log: the push (with its ref) and the two REST writes.
    const entries = JSON.stringify(await forgelink.storage.db.selectFrom('audit_events').selectAll().where('run_id', '=', run.id).execute());
    assert.match(entries, /broker\.allowed/);
    assert.match(entries, new RegExp(`refs/heads/${branch.replace('/', '\\/')}`));
    assert.match(entries, /merge_requests/);
    assert.ok(!entries.includes(token));
  });

  test('the sandbox holds neither the real GitLab token nor the model key; its surrogates open nothing outside the run', async () => {
    const script = [
      'set -e',
      'echo "surrogate=$GITLAB_TOKEN"',
      'echo "model-surrogate=$MODEL_KEY"',
      // The model key works toward its host through the broker (plain http) …
      `printf "x-api-key: %s\\n" "$MODEL_KEY" | curl -sS -H @- -o /dev/null -w "model:%{http_code}\\n" http://${model.origin}/v1/messages`,
      // … and the GitLab surrogate works toward GitLab in every place GitLab takes a token.
      'printf "PRIVATE-TOKEN: %s\\n" "$GITLAB_TOKEN" | curl -sS -H @- -o /dev/null -w "private-token:%{http_code}\\n" "$GITLAB_OAUTH_BASE_URL/api/v4/user"',
      'printf "Authorization: Bearer %s\\n" "$GITLAB_TOKEN" | curl -sS -H @- -o /dev/null -w "bearer:%{http_code}\\n" "$GITLAB_OAUTH_BASE_URL/api/v4/user"',
      'curl -sS -o /dev/null -w "query:%{http_code}\\n" "$GITLAB_OAUTH_BASE_URL/api/v4/user?private_token=$GITLAB_TOKEN"',
      // The model surrogate sent to GitLab, and the GitLab surrogate sent to the model, are not swapped.
      'printf "PRIVATE-TOKEN: %s\\n" "$MODEL_KEY" | curl -sS -H @- -o /dev/null -w "crossed-gitlab:%{http_code}\\n" "$GITLAB_OAUTH_BASE_URL/api/v4/user"',
      `printf "x-api-key: %s\\n" "$GITLAB_TOKEN" | curl -sS -H @- -o /dev/null -w "crossed-model:%{http_code}\\n" http://${model.origin}/v1/messages`,
      'python3 -c "$1"',
    ].join('\n');
    const run = await runToEnd({ connectionId, project: 'acme/broker', secrets: ['MODEL_KEY'], allowHosts: [model.origin], command: ['sh', '-c', script, 'sh', SCAN] });
    const log = await logText(run.id);
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    for (const line of ['model:200', 'private-token:200', 'bearer:200', 'query:200', 'crossed-gitlab:401', 'crossed-model:401']) {
      assert.match(log, new RegExp(`^${line}$`, 'm'), log);
    }
    const surrogate = /^surrogate=(.*)$/m.exec(log)?.[1] ?? '';
    const modelSurrogate = /^model-surrogate=(.*)$/m.exec(log)?.[1] ?? '';
    assert.match(surrogate, /^glpat-[A-Za-z0-9_-]{20}$/, 'GITLAB_TOKEN looks like a GitLab token');
    assert.match(modelSurrogate, /^sk-ant-api03-[A-Za-z0-9]{32,}$/, 'the model key keeps its vendor prefix');
    assert.notEqual(surrogate, token);
    assert.notEqual(modelSurrogate, MODEL_KEY);

    const scan = JSON.parse(/^SCAN (.*)$/m.exec(log)?.[1] ?? 'null') as { found: string[]; files: number };
    assert.ok(scan.files > 20, `the scan read files: ${scan.files}`);
    assert.ok(scan.found.includes(surrogate), 'the scan sees the surrogate, so it would see the token');
    assert.ok(!scan.found.includes(token), 'the real GitLab token is readable inside the sandbox');
    assert.ok(!scan.found.includes(MODEL_KEY), 'the real model key is readable inside the sandbox');
    assert.ok(model.seen.some((headers) => headers['x-api-key'] === MODEL_KEY), 'the model API got the real key');

    // From the host, straight at GitLab, the surrogate is nobody's token; the run's proxy is gone with the run.
    const dispatcher = new Agent({ connect: { ca: gitlab.caPem ?? undefined } });
    try {
      const direct = await fetch(`${gitlab.baseUrl}/api/v4/user`, { headers: { 'PRIVATE-TOKEN': surrogate }, dispatcher });
      assert.equal(direct.status, 401);
      const real = await fetch(`${gitlab.baseUrl}/api/v4/user`, { headers: { 'PRIVATE-TOKEN': token }, dispatcher });
      assert.equal(real.status, 200, 'the same request with the real token works');
    } finally {
      await dispatcher.close();
    }
    assert.deepEqual(await readdir(path.join(forgelink.workDir, 'sandboxes')).catch(() => []), []);
  });
  test('the run policy: what would change the default, protected or pre-existing branches, tags, tokens, members, variables, other projects or a merge is refused before GitLab sees it', async () => {
    const before = new Map(gitlab.branches(guardedId).map((branch) => [branch.name, branch.sha]));
    const call = sandboxApiCall;
    const script = [
      'cd /workspace',
      'git commit -q --allow-empty -m change',
      'git push origin HEAD:main; echo "default:$?"',
      'git push origin HEAD:release/1.0; echo "protected:$?"',
      'git push origin :feature-old; echo "delete:$?"',
      'orphan=$(git commit-tree -m rewritten "HEAD^{tree}")',
      'git push -f origin "$orphan:refs/heads/feature-old"; echo "force:$?"',
      'git tag v1 && git push origin v1; echo "tag:$?"',
      'git push -q origin HEAD:feature-old; echo "fast-forward:$?"',
      'git push -q origin HEAD:refs/heads/agent/ok; echo "feature:$?"',
      call('commits-api', 'POST', '/projects/acme%2Fguarded/repository/commits', `-H "Content-Type: application/json" --data '{"branch":"main","commit_message":"direct","actions":[{"action":"create","file_path":"x.txt","content":"x"}]}'`),
      call('token', 'POST', '/user/personal_access_tokens', '--data-urlencode name=mine --data-urlencode scopes[]=api'),
      call('member', 'POST', '/projects/acme%2Fguarded/members', '--data user_id=1 --data access_level=50'),
      call('variables', 'GET', '/projects/acme%2Fguarded/variables'),
      call('other-project', 'POST', '/projects/acme%2Fother/issues', '--data-urlencode title=elsewhere'),
      call('open-mr', 'POST', '/projects/acme%2Fguarded/merge_requests', '--data-urlencode source_branch=agent/ok --data-urlencode target_branch=main --data-urlencode title=ok'),
      call('merge', 'PUT', '/projects/acme%2Fguarded/merge_requests/1/merge'),
    ].join('\n');
    const run = await runToEnd({ connectionId, project: 'acme/guarded', command: ['sh', '-c', script] });
    const log = await logText(run.id);
    assert.equal(run.status, 'succeeded', `${JSON.stringify(run.error)}\n${log}`);
    const line = (label: string) => labelled(log, label);
    // git refuses with the policy's words, per ref.
    for (const [label, rule] of [
      ['default', 'push.default_branch'],
      ['protected', 'push.protected_branch'],
      ['delete', 'push.delete_existing'],
      ['force', 'push.force_existing'],
      ['tag', 'push.tag'],
    ]) {
      assert.notEqual(line(label as string), '0', `${label} should fail\n${log}`);
      assert.match(log, new RegExp(`\\[remote rejected\\].*forgelink policy \\(${(rule as string).replace('.', '\\.')}\\)`), `${label}: git shows the rule\n${log}`);
    }
    assert.equal(line('fast-forward'), '0', log);
    assert.equal(line('feature'), '0', log);
    for (const [label, status] of [
      ['commits-api', '403'],
      ['token', '403'],
      ['member', '403'],
      ['variables', '403'],
      ['other-project', '403'],
      ['open-mr', '201'],
      ['merge', '403'],
    ]) {
      assert.equal(line(label as string), status, `${label}\n${log}`);
    }
    assert.match(log, /\{"message":"forgelink policy \(api\.merge\): /);

    // Nothing changed at GitLab but the fast-forward and the new branch.
    const after = new Map(gitlab.branches(guardedId).map((branch) => [branch.name, branch.sha]));
    assert.equal(after.get('main'), before.get('main'));
    assert.equal(after.get('release/1.0'), before.get('release/1.0'));
    assert.notEqual(after.get('feature-old'), before.get('feature-old'));
    assert.ok(after.has('agent/ok'));
    assert.deepEqual(gitlab.mergeRequests(guardedId).map((mr) => mr.state), ['opened']);
    assert.deepEqual(gitlab.issues(otherId), []);

    // The run and the audit log say what was refused, by rule.
    const rules = run.policy.refused.map((refusal: { rule: string }) => refusal.rule);
    for (const rule of ['push.default_branch', 'push.protected_branch', 'push.delete_existing', 'push.force_existing', 'push.tag', 'push.default_branch', 'api.user', 'api.members', 'api.secret_read', 'api.write_other_project', 'api.merge']) {
      assert.ok(rules.includes(rule), `${rule} in ${JSON.stringify(rules)}`);
    }
    for (const refusal of run.policy.refused) {
      assert.match(refusal.target, /^127\.0\.0\.1:\d+\/gitlab\//);
      assert.ok(!refusal.target.includes('?'));
      assert.match(refusal.message, /^forgelink policy \(/);
    }
    const audit = await forgelink.storage.db.selectFrom('audit_events').selectAll().where('run_id', '=', run.id).where('action', '=', 'broker.refused').execute();
    assert.equal(audit.length, run.policy.refused.length);
    assert.match(JSON.stringify(audit), /0{40} [0-9a-f]{40} refs\/tags\/v1/);
    assert.match(log, /^Policy refused POST 127\.0\.0\.1:\d+\/gitlab\/api\/v4\/user\/personal_access_tokens \(api\.user\): \S/m);
    // The log line names the rule once; the message the agent got keeps its "forgelink policy (rule):" prefix.
    const refusalLines = log.split('\n').filter((text) => text.startsWith('Policy refused '));
    assert.equal(refusalLines.length, run.policy.refused.length);
    for (const text of refusalLines) assert.doesNotMatch(text, /forgelink policy \(/, text);
  });
});
