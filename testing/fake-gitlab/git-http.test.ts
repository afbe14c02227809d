import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab, type FakeProject } from './index.ts';
import { clientFor, gitCli, remoteLines, type GitCli } from './test-support.ts';

const ACCESS_DENIED = /^HTTP Basic: Access denied\. If a password was provided for Git authentication/;

/**
 * Plain git against the fake over HTTPS with its test CA, under a subpath: clone, push, scopes and
 * roles, protected branches, push options and GitLab's reply lines.
 */
describe('git smart HTTP against the fake', () => {
  let gl: FakeGitLab;
  let git: GitCli;
  let client: ReturnType<typeof clientFor>;
  let project: FakeProject;
  const tokens: Record<string, string> = {};
  const users: Record<string, number> = {};
  let url: string;

  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    git = await gitCli(gl);
    client = clientFor(gl);
    for (const name of ['dev', 'maintainer', 'reporter', 'outsider']) users[name] = gl.addUser({ username: name }).id;
    project = gl.addProject({
      path: 'team/app',
      branches: ['stable'],
      members: [
        { userId: users.dev ?? 0, accessLevel: 30 },
        { userId: users.maintainer ?? 0, accessLevel: 40 },
        { userId: users.reporter ?? 0, accessLevel: 20 },
      ],
    });
    tokens.devWrite = gl.addToken(users.dev ?? 0, { scopes: ['write_repository'] });
    tokens.devRead = gl.addToken(users.dev ?? 0, { scopes: ['read_repository'] });
    tokens.devReadApi = gl.addToken(users.dev ?? 0, { scopes: ['read_api'] });
    tokens.devUser = gl.addToken(users.dev ?? 0, { scopes: ['read_user'] });
    tokens.maintainer = gl.addToken(users.maintainer ?? 0, { scopes: ['api'] });
    tokens.reporter = gl.addToken(users.reporter ?? 0, { scopes: ['write_repository'] });
    tokens.outsider = gl.addToken(users.outsider ?? 0, { scopes: ['api'] });
    url = `${gl.baseUrl}/team/app.git`;
  });
  after(async () => {
    await client.close();
    await git.close();
    await gl.close();
  });

  async function cloneAs(token: string, name: string, from = url): Promise<string> {
    const result = await git.run(['clone', from, name], { token });
    assert.equal(result.code, 0, result.stderr);
    return join(git.dir, name);
  }

  async function commit(repo: string, file: string, content: string): Promise<string> {
    await writeFile(join(repo, file), content);
    assert.equal((await git.run(['add', file], { cwd: repo })).code, 0);
    assert.equal((await git.run(['commit', '-q', '-m', `Change ${file}`], { cwd: repo })).code, 0);
    return (await git.run(['rev-parse', 'HEAD'], { cwd: repo })).stdout.trim();
  }

  test('clones under the subpath with read_repository, with and without .git', async () => {
    const repo = await cloneAs(tokens.devRead ?? '', 'read-clone');
    assert.match(await readFile(join(repo, 'README.md'), 'utf8'), /^# app\n/);
    const heads = (await git.run(['ls-remote', '--heads', 'origin'], { cwd: repo, token: tokens.devRead ?? '' })).stdout;
    assert.match(heads, /refs\/heads\/main\n/);
    assert.match(heads, /refs\/heads\/stable\n/);
    await cloneAs(tokens.devReadApi ?? '', 'no-dot-git', `${gl.baseUrl}/team/app`);
    const recorded = gl.requests.filter((r) => r.path === '/team/app.git/info/refs');
    assert.ok(recorded.some((r) => r.authorized && r.query.service === 'git-upload-pack'));
  });

  test('without credentials git is challenged with Basic realm="GitLab" and fails', async () => {
    const response = await client.get('/team/app.git/info/refs?service=git-upload-pack');
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Basic realm="GitLab"');
    assert.match(await response.text(), ACCESS_DENIED);
    const result = await git.run(['clone', url, 'anonymous']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /could not read Username/);
  });

  test('unknown, expired and revoked tokens fail authentication', async () => {
    const expired = gl.addToken(users.dev ?? 0, { scopes: ['api'] });
    gl.expireToken(expired);
    const revoked = gl.addToken(users.dev ?? 0, { scopes: ['api'], revoked: true });
    for (const token of ['glpat-nosuchtokennosuchtok', expired, revoked]) {
      const result = await git.run(['ls-remote', url], { token });
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /Authentication failed/);
      assert.ok(remoteLines(result.stderr).some((line) => ACCESS_DENIED.test(line)), result.stderr);
    }
  });

  test('a token without a repository scope cannot fetch: "You are not allowed to download code."', async () => {
    const result = await git.run(['ls-remote', url], { token: tokens.devUser ?? '' });
    assert.notEqual(result.code, 0);
    assert.deepEqual(remoteLines(result.stderr), ['You are not allowed to download code.']);
    assert.match(result.stderr, /The requested URL returned error: 403/);
  });

  test('a private project the user is not a member of is not found', async () => {
    const result = await git.run(['ls-remote', url], { token: tokens.outsider ?? '' });
    assert.notEqual(result.code, 0);
    assert.deepEqual(remoteLines(result.stderr), [
      "The project you were looking for could not be found or you don't have permission to view it.",
    ]);
  });

  test('write_repository pushes a new branch; the reply offers to create a merge request', async () => {
    const repo = await cloneAs(tokens.devWrite ?? '', 'dev-push');
    await git.run(['checkout', '-q', '-b', 'feature/login'], { cwd: repo });
    const sha = await commit(repo, 'login.txt', 'login\n');
    const result = await git.run(['push', 'origin', 'feature/login'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(remoteLines(result.stderr), [
      '',
      'To create a merge request for feature/login, visit:',
      `  ${gl.baseUrl}/team/app/-/merge_requests/new?merge_request%5Bsource_branch%5D=feature%2Flogin`,
      '',
    ]);
    assert.deepEqual(gl.branches(project.id).find((b) => b.name === 'feature/login'), { name: 'feature/login', sha });
  });

  test('read_repository and read_api cannot push: "You are not allowed to upload code."', async () => {
    const repo = await cloneAs(tokens.devRead ?? '', 'read-push');
    await git.run(['checkout', '-q', '-b', 'feature/readonly'], { cwd: repo });
    await commit(repo, 'ro.txt', 'ro\n');
    for (const token of [tokens.devRead ?? '', tokens.devReadApi ?? '']) {
      const result = await git.run(['push', 'origin', 'feature/readonly'], { cwd: repo, token });
      assert.notEqual(result.code, 0);
      assert.deepEqual(remoteLines(result.stderr), ['You are not allowed to upload code.']);
      assert.match(result.stderr, /The requested URL returned error: 403/);
    }
    assert.ok(!gl.branches(project.id).some((b) => b.name === 'feature/readonly'));
  });

  test('a Reporter cannot push: "You are not allowed to push code to this project."', async () => {
    const repo = await cloneAs(tokens.reporter ?? '', 'reporter');
    await git.run(['checkout', '-q', '-b', 'feature/reporter'], { cwd: repo });
    await commit(repo, 'r.txt', 'r\n');
    const result = await git.run(['push', 'origin', 'feature/reporter'], { cwd: repo, token: tokens.reporter ?? '' });
    assert.notEqual(result.code, 0);
    assert.deepEqual(remoteLines(result.stderr), ['You are not allowed to push code to this project.']);
  });

  test('a Developer is refused on the protected default branch; a Maintainer is not', async () => {
    const before = gl.branches(project.id).find((b) => b.name === 'main')?.sha;
    const repo = await cloneAs(tokens.devWrite ?? '', 'dev-main');
    const sha = await commit(repo, 'main.txt', 'main\n');
    const refused = await git.run(['push', 'origin', 'main'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.notEqual(refused.code, 0);
    assert.deepEqual(remoteLines(refused.stderr), [
      'GitLab: You are not allowed to push code to protected branches on this project.',
    ]);
    assert.match(refused.stderr, /! \[remote rejected\] main -> main \(pre-receive hook declined\)/);
    assert.equal(gl.branches(project.id).find((b) => b.name === 'main')?.sha, before);

    const allowed = await git.run(['push', 'origin', 'main'], { cwd: repo, token: tokens.maintainer ?? '' });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.deepEqual(remoteLines(allowed.stderr), [], 'no merge request link for the default branch');
    assert.equal(gl.branches(project.id).find((b) => b.name === 'main')?.sha, sha);
  });

  test('force pushes to a protected branch are refused unless the rule allows them', async () => {
    gl.protectBranch(project.id, 'release/*', { pushAccessLevel: 30, mergeAccessLevel: 30 });
    const repo = await cloneAs(tokens.devWrite ?? '', 'force');
    await git.run(['checkout', '-q', '-b', 'release/1'], { cwd: repo });
    await commit(repo, 'r1.txt', 'one\n');
    const created = await git.run(['push', 'origin', 'release/1'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.equal(created.code, 0, 'Developers may push where the rule says Developers + Maintainers');
    await git.run(['commit', '-q', '--amend', '-m', 'Rewritten'], { cwd: repo });
    const forced = await git.run(['push', '--force', 'origin', 'release/1'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.notEqual(forced.code, 0);
    assert.deepEqual(remoteLines(forced.stderr), [
      'GitLab: You are not allowed to force push code to a protected branch on this project.',
    ]);

    gl.unprotectBranch(project.id, 'release/*');
    gl.protectBranch(project.id, 'release/*', { pushAccessLevel: 30, allowForcePush: true });
    const allowed = await git.run(['push', '--force', 'origin', 'release/1'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.equal(allowed.code, 0, allowed.stderr);
  });

  test('deleting the default branch is refused', async () => {
    const repo = join(git.dir, 'dev-main');
    const result = await git.run(['push', 'origin', ':main'], { cwd: repo, token: tokens.maintainer ?? '' });
    assert.notEqual(result.code, 0);
    assert.deepEqual(remoteLines(result.stderr), ['GitLab: The default branch of a project cannot be deleted.']);
  });

  test('push options create a merge request and print GitLab\'s reply; a second push does not duplicate it', async () => {
    const repo = await cloneAs(tokens.devWrite ?? '', 'options');
    await git.run(['checkout', '-q', '-b', 'feature-x'], { cwd: repo });
    const first = await commit(repo, 'x.txt', 'x\n');
    const options = [
      '-o', 'merge_request.create',
      '-o', 'merge_request.target=stable',
      '-o', 'merge_request.title=Add x',
      '-o', 'merge_request.description=Adds x.\\nSecond line.',
      '-o', 'merge_request.label=agent',
    ];
    const pushed = await git.run(['push', ...options, 'origin', 'feature-x'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.equal(pushed.code, 0, pushed.stderr);
    const [mr] = gl.mergeRequests(project.id).filter((m) => m.sourceBranch === 'feature-x');
    assert.ok(mr);
    const mrUrl = `${gl.baseUrl}/team/app/-/merge_requests/${mr.iid}`;
    assert.deepEqual(remoteLines(pushed.stderr), ['', 'View merge request for feature-x:', `  ${mrUrl}`, '']);
    assert.equal(mr.title, 'Add x');
    assert.equal(mr.description, 'Adds x.\nSecond line.');
    assert.equal(mr.targetBranch, 'stable');
    assert.equal(mr.authorId, users.dev);
    assert.deepEqual(mr.assigneeIds, [users.dev]);
    assert.deepEqual(mr.labels, ['agent']);
    assert.equal(mr.sha, first);

    const second = await commit(repo, 'y.txt', 'y\n');
    const again = await git.run(['push', '-o', 'merge_request.create', 'origin', 'feature-x'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(remoteLines(again.stderr), ['', 'View merge request for feature-x:', `  ${mrUrl}`, '']);
    const all = gl.mergeRequests(project.id).filter((m) => m.sourceBranch === 'feature-x');
    assert.equal(all.length, 1);
    assert.equal(all[0]?.sha, second, 'the open merge request follows the branch');
  });

  test('without a title, the merge request takes the only commit\'s subject', async () => {
    const repo = join(git.dir, 'options');
    await git.run(['checkout', '-q', '-b', 'feature-y', 'origin/main'], { cwd: repo });
    await commit(repo, 'only.txt', 'only\n');
    const pushed = await git.run(['push', '-o', 'merge_request.create', 'origin', 'feature-y'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.equal(pushed.code, 0, pushed.stderr);
    const mr = gl.mergeRequests(project.id).find((m) => m.sourceBranch === 'feature-y');
    assert.equal(mr?.title, 'Change only.txt');
    assert.equal(mr?.targetBranch, 'main');
  });

  test('push option errors come back as GitLab\'s framed warning; the branch is still pushed', async () => {
    const repo = join(git.dir, 'options');
    await git.run(['checkout', '-q', '-b', 'feature-z', 'origin/main'], { cwd: repo });
    await commit(repo, 'z.txt', 'z\n');
    const pushed = await git.run(
      ['push', '-o', 'merge_request.create', '-o', 'merge_request.target=nope', 'origin', 'feature-z'],
      { cwd: repo, token: tokens.devWrite ?? '' },
    );
    assert.equal(pushed.code, 0, pushed.stderr);
    const lines = remoteLines(pushed.stderr);
    assert.equal(lines[1], '='.repeat(72));
    const text = lines.join(' ').replace(/\s+/g, ' ');
    assert.match(
      text,
      /WARNINGS: Error encountered with push options 'merge_request\.create' 'merge_request\.target=nope': Target branch team\/app:nope does not exist/,
    );
    assert.ok(lines.includes('To create a merge request for feature-z, visit:'));
    assert.ok(!gl.mergeRequests(project.id).some((m) => m.sourceBranch === 'feature-z'));
  });

  test('a large push is streamed in chunks; a gzip-encoded fetch request is inflated', async () => {
    const repo = join(git.dir, 'options');
    await git.run(['checkout', '-q', '-b', 'big', 'origin/main'], { cwd: repo });
    await writeFile(join(repo, 'big.bin'), randomBytes(3 * 1024 * 1024));
    await git.run(['add', 'big.bin'], { cwd: repo });
    await git.run(['commit', '-q', '-m', 'Big'], { cwd: repo });
    const pushed = await git.run(['-c', 'http.postBuffer=65536', 'push', 'origin', 'big'], { cwd: repo, token: tokens.devWrite ?? '' });
    assert.equal(pushed.code, 0, pushed.stderr);

    const sha = gl.branches(project.id).find((b) => b.name === 'big')?.sha ?? '';
    const pkt = (line: string) => `${(line.length + 4).toString(16).padStart(4, '0')}${line}`;
    const body = gzipSync(Buffer.from(`${pkt(`want ${sha}\n`)}0000${pkt('done\n')}`));
    const auth = `Basic ${Buffer.from(`oauth2:${tokens.devRead}`).toString('base64')}`;
    const response = await client.post('/team/app.git/git-upload-pack', body, {
      Authorization: auth,
      'Content-Type': 'application/x-git-upload-pack-request',
      'Content-Encoding': 'gzip',
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/x-git-upload-pack-result');
    const pack = Buffer.from(await response.arrayBuffer());
    assert.ok(pack.includes(Buffer.from('PACK')), 'the answer carries a pack');
  });
});

describe('git smart HTTP: public and empty projects', () => {
  let gl: FakeGitLab;
  let git: GitCli;

  before(async () => {
    gl = await startFakeGitLab();
    git = await gitCli(gl);
  });
  after(async () => {
    await git.close();
    await gl.close();
  });

  test('anyone may clone a public project; pushing still needs credentials', async () => {
    gl.addProject({ path: 'oss/lib', visibility: 'public' });
    const cloned = await git.run(['clone', `${gl.baseUrl}/oss/lib.git`, 'lib']);
    assert.equal(cloned.code, 0, cloned.stderr);
    const pushed = await git.run(['push', 'origin', 'HEAD:refs/heads/anon'], { cwd: join(git.dir, 'lib') });
    assert.notEqual(pushed.code, 0);
    assert.match(pushed.stderr, /could not read Username/);
  });

  test('an empty project: a Developer may not push first under default branch protection; a Maintainer may', async () => {
    const dev = gl.addUser({ username: 'dev' }).id;
    const owner = gl.addUser({ username: 'owner' }).id;
    const empty = gl.addProject({
      path: 'team/empty',
      defaultBranch: null,
      members: [{ userId: dev, accessLevel: 30 }, { userId: owner, accessLevel: 40 }],
    });
    const devToken = gl.addToken(dev, { scopes: ['write_repository'] });
    const ownerToken = gl.addToken(owner, { scopes: ['write_repository'] });
    assert.deepEqual(gl.branches(empty.id), []);
    const cloned = await git.run(['clone', `${gl.baseUrl}/team/empty.git`, 'empty'], { token: devToken });
    assert.equal(cloned.code, 0, cloned.stderr);
    const repo = join(git.dir, 'empty');
    await writeFile(join(repo, 'a.txt'), 'a\n');
    await git.run(['add', 'a.txt'], { cwd: repo });
    await git.run(['commit', '-q', '-m', 'First'], { cwd: repo });
    await git.run(['branch', '-M', 'main'], { cwd: repo });

    const refused = await git.run(['push', 'origin', 'main'], { cwd: repo, token: devToken });
    assert.notEqual(refused.code, 0);
    assert.deepEqual(remoteLines(refused.stderr).slice(0, 6), [
      'GitLab:',
      'A default branch (e.g. main) does not yet exist for team/empty',
      'Ask a project Owner or Maintainer to create a default branch:',
      '',
      `  ${gl.baseUrl}/team/empty/-/project_members`,
      '',
    ]);

    const pushed = await git.run(['push', 'origin', 'main'], { cwd: repo, token: ownerToken });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(empty.defaultBranch, 'main');
    assert.deepEqual(empty.protectedBranches.map((b) => b.name), ['main'], 'the first branch becomes the protected default');
  });
});
