import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from './index.ts';
import { clientFor } from './test-support.ts';

// Debian's python3-gitlab belongs to /usr/bin/python3; another python3 may come first on PATH.
const PYTHON = '/usr/bin/python3';

/**
 * What a run does through python-gitlab, a real GitLab client: open a merge request and file an
 * issue, list both by author and creation time, hit the 409 of a duplicate merge request, read
 * protected branches and a branch. Warnings are errors.
 */
const SCRIPT = String.raw`
import json, os, warnings
warnings.simplefilter("error")
import gitlab

gl = gitlab.Gitlab(os.environ["GL_URL"], private_token=os.environ["GL_TOKEN"], ssl_verify=os.environ["GL_CA"])
gl.auth()
me = gl.user.id
project = gl.projects.get("team/app")
since = os.environ["GL_SINCE"]
out = {}

mr = project.mergerequests.create({
    "source_branch": "feature-a", "target_branch": "main", "title": "Add feature A",
    "description": "Opened by the agent.", "labels": ["agent", "bot"], "remove_source_branch": True,
})
out["mr"] = {"iid": mr.iid, "title": mr.title, "web_url": mr.web_url, "author": mr.author["id"],
             "labels": mr.labels, "sha": mr.sha, "state": mr.state}
try:
    project.mergerequests.create({"source_branch": "feature-a", "target_branch": "main", "title": "Again"})
    out["duplicate"] = "accepted"
except gitlab.exceptions.GitlabCreateError as e:
    out["duplicate"] = {"status": e.response_code, "message": e.error_message}

issue = project.issues.create({"title": "Flaky test", "description": "Seen in the run.", "labels": ["agent"]})
out["issue"] = {"iid": issue.iid, "web_url": issue.web_url, "author": issue.author["id"], "labels": issue.labels}

out["mrs"] = [[m.iid, m.title] for m in project.mergerequests.list(
    author_id=me, created_after=since, scope="all", state="all", order_by="created_at", sort="asc", per_page=1, iterator=True)]
out["issues"] = [[i.iid, i.title] for i in project.issues.list(
    author_id=me, created_after=since, scope="all", state="all", order_by="created_at", sort="asc", per_page=1, iterator=True)]

out["protected"] = [{"name": p.name, "push": [l["access_level"] for l in p.push_access_levels],
                     "merge": [l["access_level"] for l in p.merge_access_levels],
                     "allow_force_push": p.allow_force_push}
                    for p in project.protectedbranches.list(get_all=True)]
out["main_protection"] = project.protectedbranches.get("main").name
branch = project.branches.get("feature-a")
out["branch"] = {"name": branch.name, "sha": branch.commit["id"], "protected": branch.protected, "can_push": branch.can_push}
print(json.dumps(out))
`;

function runPython(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-'], { env: { PATH: '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`python exited ${code}: ${stderr}`))));
    child.stdin.end(SCRIPT);
  });
}

describe('python-gitlab drives a run\'s merge requests, issues and branches (HTTPS, subpath)', () => {
  let gl: FakeGitLab;

  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
  });
  after(async () => {
    await gl.close();
  });

  test('create, list by author_id and created_after, 409 on a duplicate, protected branches', async () => {
    const agent = gl.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    const human = gl.addUser({ username: 'human' }).id;
    const project = gl.addProject({
      path: 'team/app',
      members: [{ userId: agent, accessLevel: 30 }, { userId: human, accessLevel: 40 }],
    });
    gl.protectBranch(project.id, 'release/*', { pushAccessLevel: 30, allowForcePush: true });
    const token = gl.addToken(agent, { scopes: ['api'], expiresAt: '2099-12-31' });
    const sha = await gl.commitFile(project.id, { branch: 'feature-a', path: 'a.txt', content: 'a\n', message: 'Add a' });
    await gl.commitFile(project.id, { branch: 'old-work', path: 'o.txt', content: 'o\n' });

    // Earlier work by the same account and by someone else must not show up in the run's outputs.
    const client = clientFor(gl);
    const earlier = await client.post(
      `/api/v4/projects/${project.id}/merge_requests`,
      { source_branch: 'old-work', target_branch: 'main', title: 'Old work' },
      { 'PRIVATE-TOKEN': token },
    );
    assert.equal(earlier.status, 201);
    const humanToken = gl.addToken(human, { scopes: ['api'] });
    assert.equal((await client.post(`/api/v4/projects/${project.id}/issues`, { title: 'Human issue' }, { 'PRIVATE-TOKEN': humanToken })).status, 201);
    await client.close();
    await sleep(5);
    const since = new Date().toISOString();
    await sleep(5);

    const out = JSON.parse(
      await runPython({ GL_URL: gl.baseUrl, GL_TOKEN: token, GL_CA: gl.caFile ?? '', GL_SINCE: since }),
    ) as Record<string, unknown>;

    assert.deepEqual(out.mr, {
      iid: 2,
      title: 'Add feature A',
      web_url: `${gl.baseUrl}/team/app/-/merge_requests/2`,
      author: agent,
      labels: ['agent', 'bot'],
      sha,
      state: 'opened',
    });
    assert.deepEqual(out.duplicate, {
      status: 409,
      message: ['Another open merge request already exists for this source branch: !2'],
    });
    assert.deepEqual(out.issue, { iid: 2, web_url: `${gl.baseUrl}/team/app/-/issues/2`, author: agent, labels: ['agent'] });
    assert.deepEqual(out.mrs, [[2, 'Add feature A']]);
    assert.deepEqual(out.issues, [[2, 'Flaky test']]);
    assert.deepEqual(out.protected, [
      { name: 'main', push: [40], merge: [40], allow_force_push: false },
      { name: 'release/*', push: [30], merge: [40], allow_force_push: true },
    ]);
    assert.equal(out.main_protection, 'main');
    assert.deepEqual(out.branch, { name: 'feature-a', sha, protected: false, can_push: true });

    // python-gitlab walked the lists page by page (per_page=1) and sent the filters GitLab documents.
    const listings = gl.requests.filter((r) => r.path === `/api/v4/projects/${project.id}/merge_requests` && r.method === 'GET');
    assert.ok(listings.length >= 1);
    assert.equal(listings[0]?.query.author_id, String(agent));
    assert.equal(listings[0]?.query.created_after, since);
  });
});
