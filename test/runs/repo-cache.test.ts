import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { listMirrors, pruneMirrors, repoCacheDir } from '../../src/runs/index.ts';
import { holdShared, takeLock } from '../../src/runs/repo-cache.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The repository cache (docs/architecture.md, "The repository cache") with real git, real bubblewrap and the fake
 * GitLab over HTTPS. What the agent sees is printed by the agent itself, inside its sandbox.
 */

/** What the agent sees of its workspace, between markers: fsck's verdict, HEAD, every ref, origin, the branch. */
const DESCRIBE = [
  'set -e',
  'git fsck --no-progress --no-dangling >/dev/null 2>&1 && echo FSCK-OK || echo FSCK-FAILED',
  'echo "HEAD $(git rev-parse HEAD) $(git rev-parse --abbrev-ref HEAD)"',
  'git for-each-ref --format="REF %(objectname) %(refname) %(symref)"',
  'echo "ORIGIN $(git remote get-url origin)"',
  'echo "UPSTREAM $(git rev-parse --abbrev-ref @{upstream})"',
  'echo "FILES $(git ls-files | sort | tr "\\n" " ")"',
  'git status --porcelain | sed "s/^/DIRTY /"',
].join('\n');

function seen(log: string): string[] {
  return log.split('\n').filter((line) => /^(FSCK-|HEAD |REF |ORIGIN |UPSTREAM |FILES |DIRTY )/.test(line));
}

function gitIn(dir: string, args: string[]): string {
  return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1' } });
}

describe('the repository cache (real git, real bubblewrap, fake GitLab over HTTPS)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let botId: number;
  let project: ReturnType<FakeGitLab['addProject']>;
  let cacheDir: string;
  const tokens: string[] = [];
  let aliceConnection: string;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    botId = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    project = gitlab.addProject({ path: 'acme/cached', branches: ['feature'], protectDefaultBranch: false, members: [{ userId: botId, accessLevel: 30 }] });
    for (let i = 0; i < 5; i += 1) await gitlab.commitFile(project.id, { branch: 'main', path: `src/file-${i}.txt`, content: `content ${i}\n`.repeat(50) });
    // A tag: the agent sees the same tags whether the workspace came from the mirror or not.
    execFileSync('git', ['-C', gitlab.repoPath(project.id), 'tag', 'v1.0', 'main']);
    forgelink = await startForgelink({ runs: { concurrency: 4 } });
    cacheDir = repoCacheDir(forgelink.workDir);
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
    aliceConnection = await connect(alice, botId);
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  async function connect(user: TestUser, gitlabUserId: number): Promise<string> {
    const token = gitlab.addToken(gitlabUserId, { scopes: ['api', 'write_repository'], expiresAt: '2027-06-30' });
    tokens.push(token);
    const response = await forgelink.call(user, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(response.status, 201, response.text);
    return response.json.id;
  }

  async function startRun(user: TestUser, body: Record<string, unknown>): Promise<string> {
    const started = await forgelink.call(user, 'POST', '/api/v1/runs', body);
    assert.equal(started.status, 201, started.text);
    return started.json.id;
  }

  async function finish(user: TestUser, id: string): Promise<any> {
    for (;;) {
      const current = await forgelink.call(user, 'GET', `/api/v1/runs/${id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function runToEnd(user: TestUser, body: Record<string, unknown>): Promise<{ run: any; log: string }> {
    const run = await finish(user, await startRun(user, body));
    return { run, log: await logText(user, run.id) };
  }

  async function logText(user: TestUser, runId: string): Promise<string> {
    const response = await forgelink.call(user, 'GET', `/api/v1/runs/${runId}/log`);
    return response.json.entries.map((entry: { text: string }) => entry.text).join('');
  }

  async function theMirror(): Promise<string> {
    const mirrors = await listMirrors(cacheDir);
    const mine = mirrors.find((mirror) => mirror.projectPath === 'acme/cached');
    assert.ok(mine, `a mirror of acme/cached among ${JSON.stringify(mirrors)}`);
    return path.join(mine.path, 'repo.git');
  }

  /** A plain clone by the test itself, on the host (asynchronously: the fake GitLab answers from this process): what a workspace must equal. */
  async function plainCloneView(): Promise<{ head: string; refs: string[] }> {
    const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-plain-clone-'));
    try {
      const url = `${gitlab.baseUrl}/acme/cached.git`.replace('https://', `https://oauth2:${tokens[0]}@`);
      await promisify(execFile)('git', ['-c', `http.sslCAInfo=${gitlab.caFile}`, 'clone', '--quiet', url, `${dir}/ws`], { env: { PATH: '/usr/bin:/bin', HOME: dir, GIT_CONFIG_NOSYSTEM: '1' } });
      const refs = gitIn(`${dir}/ws`, ['for-each-ref', '--format=REF %(objectname) %(refname) %(symref)']).split('\n').filter((line) => line !== '');
      return { head: gitIn(`${dir}/ws`, ['rev-parse', 'HEAD']).trim(), refs };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  test('cold then warm: identical workspaces, equal to a plain clone; the log and the run say which', async (t) => {
    const cold = await runToEnd(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['sh', '-c', DESCRIBE] });
    assert.equal(cold.run.status, 'succeeded', JSON.stringify(cold.run.error));
    assert.equal(cold.run.repoCache, 'cold');
    assert.match(cold.log, /Repository cache: cold, building the mirror/);
    assert.match(cold.log, /Counting objects: 100%/, 'clone progress is in the log');
    assert.match(cold.log, /Cloning into bare repository 'build-[0-9a-f]+\.git'\.\.\./);
    assert.ok(!cold.log.includes(forgelink.workDir), 'the log names no path of the host\'s data directory');
    assert.ok(cold.run.timings.readyMs > 0 && cold.run.timings.cloneMs > 0 && cold.run.timings.cloneMs <= cold.run.timings.readyMs, JSON.stringify(cold.run.timings));

    const warm = await runToEnd(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['sh', '-c', DESCRIBE] });
    assert.equal(warm.run.status, 'succeeded', JSON.stringify(warm.run.error));
    assert.equal(warm.run.repoCache, 'warm');
    // An API token's preflight vouched for the project: the run asks GitLab's git once, fetching into the mirror.
    assert.match(warm.log, /Repository cache: warm, fetching what changed at GitLab into the mirror\./);
    assert.match(warm.log, /Repository cache: the fetch brought 0 updated, 0 new and 0 deleted refs/);
    assert.doesNotMatch(warm.log, /Cloning into '\/workspace'\.\.\.\n.*Receiving objects/);

    const coldView = seen(cold.log);
    assert.ok(coldView.includes('FSCK-OK'), coldView.join('\n'));
    assert.ok(coldView.some((line) => line === 'REF ' + gitlab.branches(project.id).find((b) => b.name === 'feature')?.sha + ' refs/remotes/origin/feature '), coldView.join('\n'));
    assert.ok(coldView.some((line) => line.includes(' refs/tags/v1.0')), 'the tag is there');
    assert.deepEqual(seen(warm.log), coldView, 'warm and cold workspaces look the same to the agent');
    const plain = await plainCloneView();
    assert.deepEqual(coldView.filter((line) => line.startsWith('REF ')), plain.refs, 'the same refs as a plain clone');
    assert.ok(coldView.includes(`HEAD ${plain.head} main`));
    assert.ok(coldView.includes(`ORIGIN ${gitlab.baseUrl}/acme/cached.git`), 'origin is GitLab, as without the cache');

    // One new commit upstream (and a new tag, a new branch, a moved one): the next run fetches just that into the
    // mirror. Its workspace, cloned from the mirror while that fetch ran, is brought to what the fetch left.
    const sha = await gitlab.commitFile(project.id, { branch: 'main', path: 'src/new.txt', content: 'new\n' });
    execFileSync('git', ['-C', gitlab.repoPath(project.id), 'tag', '-a', '-m', 'release', 'v1.1', 'main']);
    execFileSync('git', ['-C', gitlab.repoPath(project.id), 'branch', 'hotfix', 'main~1']);
    await gitlab.commitFile(project.id, { branch: 'feature', path: 'src/feature.txt', content: 'moved\n' });
    const listings = () => gitlab.requests.filter((request) => request.method === 'GET' && /\/(merge_requests|issues)$/.test(request.path)).length;
    const listedBefore = listings();
    // GitLab is slow to answer the fetch: the workspace is cloned from the mirror as it was meanwhile.
    const release = gitlab.holdFetches();
    t.after(release);
    const afterId = await startRun(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['sh', '-c', DESCRIBE] });
    await waitFor('the workspace cloned from the mirror during the fetch', async () => /Cloning into '\/workspace'\.\.\.\n(.*\n)*done\.\n/.test(await logText(alice, afterId)));
    release();
    const afterRun = await finish(alice, afterId);
    const after = { run: afterRun, log: await logText(alice, afterId) };
    assert.equal(after.run.status, 'succeeded', JSON.stringify(after.run.error));
    // The agent wrote nothing to GitLab, and its broker saw every request: nothing to collect, nothing listed.
    assert.match(after.log, /Collecting outputs: none; the agent sent GitLab no write/);
    assert.equal(listings(), listedBefore);
    assert.deepEqual(after.run.outputs, { branches: [], mergeRequests: [], issues: [] });
    assert.equal(after.run.repoCache, 'warm');
    assert.match(after.log, /Repository cache: the fetch brought 2 updated, 2 new and 0 deleted refs, .* in [\d.]+ s\./);
    assert.match(after.log, /Repository cache: the workspace was cloned from the mirror during the fetch, then brought up to date with it\./);
    const afterView = seen(after.log);
    assert.ok(afterView.includes(`HEAD ${sha} main`), afterView.join('\n'));
    assert.ok(afterView.includes('FSCK-OK') && afterView.includes('UPSTREAM origin/main'), afterView.join('\n'));
    assert.ok(!afterView.some((line) => line.startsWith('DIRTY ')), afterView.join('\n'));
    assert.ok(afterView.some((line) => line.startsWith('FILES ') && line.includes('src/new.txt')), afterView.join('\n'));
    assert.deepEqual(afterView.filter((line) => line.startsWith('REF ')), (await plainCloneView()).refs, 'the same refs as a plain clone made now');
    // The branches it started with are GitLab's as the fetch left them: the agent's outputs are counted from there.
    assert.deepEqual(after.run.outputs.branches, []);
    assert.equal(gitIn(await theMirror(), ['rev-parse', 'refs/heads/main']).trim(), sha);
  });

  test('a branch the mirror does not hold yet: the workspace is made once the fetch brought it, and the log shows no failed clone', async (t) => {
    execFileSync('git', ['-C', gitlab.repoPath(project.id), 'branch', 'fresh-start', 'main']);
    const sha = await gitlab.commitFile(project.id, { branch: 'fresh-start', path: 'src/fresh.txt', content: 'fresh\n' });
    const release = gitlab.holdFetches();
    t.after(release);
    const id = await startRun(alice, { connectionId: aliceConnection, project: 'acme/cached', branch: 'fresh-start', command: ['sh', '-c', DESCRIBE] });
    await waitFor('the run to find the branch missing from the mirror', async () => /the mirror does not hold branch fresh-start yet; the workspace is made once the fetch brought it\./.test(await logText(alice, id)));
    release();
    const run = await finish(alice, id);
    const log = await logText(alice, id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.repoCache, 'warm');
    const view = seen(log);
    assert.ok(view.includes(`HEAD ${sha} fresh-start`) && view.includes('FSCK-OK') && view.includes('UPSTREAM origin/fresh-start'), view.join('\n'));
    assert.doesNotMatch(log, /fatal|not found in upstream/);
    assert.doesNotMatch(log, /brought up to date with it/);
  });

  test('caught up during the fetch: deleted branches and tags, a branch giving way to a directory of branches, a branch named HEAD', async (t) => {
    const repo = gitlab.repoPath(project.id);
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim();
    // Known to the mirror: gone-soon (a branch) and v-gone (a tag).
    git('branch', 'gone-soon', 'main');
    git('tag', 'v-gone', 'main');
    const warmed = await runToEnd(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['true'] });
    assert.equal(warmed.run.status, 'succeeded', JSON.stringify(warmed.run.error));
    // Then, before the next run's fetch: both deleted, gone-soon/now takes gone-soon's place, a branch named HEAD
    // (not the default branch) appears, and main moves.
    git('branch', '-D', 'gone-soon');
    git('tag', '-d', 'v-gone');
    git('branch', 'gone-soon/now', 'feature');
    git('update-ref', 'refs/heads/HEAD', 'feature');
    t.after(() => execFileSync('git', ['-C', repo, 'update-ref', '-d', 'refs/heads/HEAD']));
    const sha = await gitlab.commitFile(project.id, { branch: 'main', path: 'src/moved.txt', content: 'moved\n' });
    const release = gitlab.holdFetches();
    t.after(release);
    const id = await startRun(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['sh', '-c', `${DESCRIBE}\necho "ORIG_HEAD $(test -e .git/ORIG_HEAD && echo present || echo absent)"`] });
    await waitFor('the workspace cloned from the mirror during the fetch', async () => /Cloning into '\/workspace'\.\.\.\n(.*\n)*done\.\n/.test(await logText(alice, id)));
    release();
    const run = await finish(alice, id);
    const log = await logText(alice, id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.match(log, /brought up to date with it/);
    const view = seen(log);
    assert.ok(view.includes(`HEAD ${sha} main`) && view.includes('FSCK-OK') && !view.some((line) => line.startsWith('DIRTY ')), view.join('\n'));
    const refs = view.filter((line) => line.startsWith('REF '));
    assert.ok(refs.includes(`REF ${sha} refs/remotes/origin/main `), refs.join('\n'));
    assert.ok(refs.includes('REF ' + sha + ' refs/remotes/origin/HEAD refs/remotes/origin/main'), 'origin/HEAD is GitLab\'s HEAD, not the branch named HEAD');
    assert.ok(refs.some((line) => line.endsWith(' refs/remotes/origin/gone-soon/now ')), refs.join('\n'));
    assert.ok(!refs.some((line) => / refs\/remotes\/origin\/gone-soon $/.test(line) || line.includes('refs/tags/v-gone')), refs.join('\n'));
    assert.match(log, /^ORIG_HEAD absent$/m);
    assert.ok(!('HEAD' in Object.fromEntries(run.outputs.branches.map((branch: { name: string }) => [branch.name, true]))));
    // The branch named HEAD goes again, and the mirror with it, for the tests after this one.
    git('update-ref', '-d', 'refs/heads/HEAD');
    assert.equal((await runToEnd(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['true'] })).run.status, 'succeeded');
  });

  test('--depth and --filter: shallow and partial workspaces borrow from a warm mirror without fetching into it', async () => {
    const shallow = await runToEnd(alice, {
      connectionId: aliceConnection,
      project: 'acme/cached',
      depth: 1,
      command: ['sh', '-c', 'echo "COMMITS $(git rev-list --count HEAD) SHALLOW $(git rev-parse --is-shallow-repository)"'],
    });
    assert.equal(shallow.run.status, 'succeeded', JSON.stringify(shallow.run.error));
    assert.equal(shallow.run.depth, 1);
    assert.match(shallow.log, /^COMMITS 1 SHALLOW true$/m);
    const partial = await runToEnd(alice, {
      connectionId: aliceConnection,
      project: 'acme/cached',
      filter: 'blob:none',
      command: ['sh', '-c', 'echo "PROMISOR $(git config remote.origin.promisor) FILTER $(git config remote.origin.partialclonefilter)"; cat src/file-1.txt >/dev/null && echo READ-OK'],
    });
    assert.equal(partial.run.status, 'succeeded', JSON.stringify(partial.run.error));
    assert.equal(partial.run.filter, 'blob:none');
    assert.match(partial.log, /^PROMISOR true FILTER blob:none$/m);
    assert.match(partial.log, /^READ-OK$/m);
    for (const run of [shallow.run, partial.run]) assert.equal(run.repoCache, 'warm');

    const bad = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: aliceConnection, project: 'acme/cached', filter: 'tree:0', command: ['true'] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.field, 'filter');
    const badDepth = await forgelink.call(alice, 'POST', '/api/v1/runs', { connectionId: aliceConnection, project: 'acme/cached', depth: 0, command: ['true'] });
    assert.equal(badDepth.status, 400);
    assert.equal(badDepth.json.error.field, 'depth');
  });

  test('the agent cannot write to the mirror it borrows from', async () => {
    const mirror = await theMirror();
    const refsBefore = gitIn(mirror, ['for-each-ref']);
    const script = [
      'alt=$(cat .git/objects/info/alternates)',
      'echo "ALTERNATES $alt"',
      'touch "$alt/evil" 2>/dev/null && echo WROTE-OBJECTS || echo REFUSED-OBJECTS',
      'git --git-dir="$alt/.." update-ref refs/heads/evil HEAD 2>/dev/null && echo WROTE-REF || echo REFUSED-REF',
      'echo "[core]" >> "$alt/../config" 2>/dev/null && echo WROTE-CONFIG || echo REFUSED-CONFIG',
      'rm -rf "$alt/pack" 2>/dev/null; test -d "$alt/pack" && echo PACKS-STAY',
      'git --git-dir="$alt/.." fetch --quiet "$(git remote get-url origin)" "+refs/heads/*:refs/heads/stolen/*" 2>/dev/null && echo FETCHED-INTO-MIRROR || echo REFUSED-FETCH',
      'ls /opt/forgelink/ | tr "\\n" " "; echo',
    ].join('\n');
    const { run, log } = await runToEnd(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['sh', '-c', script] });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.match(log, /^ALTERNATES \/opt\/forgelink\/mirror\/repo\.git\/objects$/m);
    for (const word of ['OBJECTS', 'REF', 'CONFIG']) assert.match(log, new RegExp(`^REFUSED-${word}$`, 'm'));
    assert.match(log, /^REFUSED-FETCH$/m);
    assert.match(log, /^PACKS-STAY$/m);
    assert.equal(gitIn(mirror, ['for-each-ref']), refsBefore, 'the mirror\'s refs are unchanged');
    await assert.rejects(stat(path.join(mirror, 'objects', 'evil')));
  });

  test('two users with different tokens share one mirror; no token is stored in it', async () => {
    const otherBot = gitlab.addUser({ username: 'other-bot', name: 'Other Bot' }).id;
    project.members.push({ userId: otherBot, accessLevel: 30 });
    const bobConnection = await connect(bob, otherBot);
    const { run, log } = await runToEnd(bob, { connectionId: bobConnection, project: 'acme/cached', command: ['sh', '-c', DESCRIBE] });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.repoCache, 'warm', 'bob borrows the mirror alice\'s runs built');
    assert.ok(seen(log).includes('FSCK-OK'));
    assert.equal((await listMirrors(cacheDir)).filter((mirror) => mirror.projectPath === 'acme/cached').length, 1);
    // The leak scan, extended to the cache: no token in any file of it (configs, packs, records, locks).
    const files = execFileSync('find', [cacheDir, '-type', 'f'], { encoding: 'utf8' }).trim().split('\n');
    assert.ok(files.some((file) => file.endsWith('/repo.git/config')), files.join('\n'));
    for (const file of files) {
      const content = await readFile(file);
      for (const token of tokens) assert.ok(!content.includes(token), `a token is in ${file}`);
    }
    assert.doesNotMatch(gitIn(await theMirror(), ['config', '--list']), /oauth2|glpat|extraheader|credential/i);
  });

  test('a token that lost access to the project is refused before the mirror is touched', async () => {
    const mirror = await theMirror();
    const recordFile = `${path.dirname(mirror)}.json`;
    const record = await readFile(recordFile, 'utf8');
    const gitRequests = () => gitlab.requests.filter((request) => request.path.includes('/acme/cached.git/')).length;
    const requestsBefore = gitRequests();
    const loser = gitlab.addUser({ username: 'leaver', name: 'Leaver' }).id;
    project.members.push({ userId: loser, accessLevel: 30 });
    const connection = await connect(alice, loser);
    project.members.splice(project.members.findIndex((member) => member.userId === loser), 1);
    const { run, log } = await runToEnd(alice, { connectionId: connection, project: 'acme/cached', command: ['sh', '-c', 'echo SHOULD-NOT-RUN'] });
    assert.equal(run.status, 'failed');
    assert.equal(run.repoCache, null);
    assert.doesNotMatch(log, /Repository cache|SHOULD-NOT-RUN/);
    assert.equal(await readFile(recordFile, 'utf8'), record, 'the mirror was not used');
    assert.equal(gitRequests(), requestsBefore, 'no git request was made with that token');
  });

  test('concurrent runs: one fetch into the mirror, the others wait for it and share it', async (t) => {
    const sha = await gitlab.commitFile(project.id, { branch: 'main', path: 'src/concurrent.txt', content: 'together\n' });
    // Each run's preflight waits until all four were requested: a fetch that begins after a run was requested is that run's to share.
    const release = gitlab.holdRequests((request) => request.path.startsWith('/api/v4/projects/'));
    t.after(release);
    const ids = await Promise.all([0, 1, 2, 3].map(() => startRun(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['sh', '-c', DESCRIBE] })));
    release();
    const runs = await Promise.all(ids.map((id) => finish(alice, id)));
    const logs = await Promise.all(ids.map((id) => logText(alice, id)));
    for (const [index, run] of runs.entries()) {
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      assert.equal(run.repoCache, 'warm');
      assert.ok(seen(logs[index] ?? '').includes(`HEAD ${sha} main`));
      assert.ok(seen(logs[index] ?? '').includes('FSCK-OK'));
    }
    assert.equal(logs.filter((log) => /the fetch brought/.test(log)).length, 1, `exactly one run fetched\n${logs.join('\n=====\n')}`);
    assert.equal(logs.filter((log) => /another run began a fetch into the mirror after this one was requested; sharing that fetch/.test(log)).length, 3, 'the others shared its fetch');
  });

  test('a damaged mirror is detected and rebuilt, never served; an interrupted fetch leaves a usable one', async () => {
    const mirror = await theMirror();
    // A fetch cut short: its marker and a half-written pack are left behind; the mirror itself is fine.
    await writeFile(path.join(path.dirname(mirror), 'fetching'), '1\n');
    await writeFile(path.join(mirror, 'objects', 'pack', 'tmp_pack_half'), 'PACK\0\0\0\x02half');
    const interrupted = await runToEnd(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['sh', '-c', DESCRIBE] });
    assert.equal(interrupted.run.status, 'succeeded', JSON.stringify(interrupted.run.error));
    assert.equal(interrupted.run.repoCache, 'warm', 'checked in full and served');
    await assert.rejects(stat(path.join(path.dirname(mirror), 'fetching')));

    // Objects gone from disk: the refs name commits it cannot read.
    for (const entry of await readdir(path.join(mirror, 'objects'))) {
      if (entry !== 'info') await rm(path.join(mirror, 'objects', entry), { recursive: true, force: true });
    }
    const { run, log } = await runToEnd(alice, { connectionId: aliceConnection, project: 'acme/cached', command: ['sh', '-c', DESCRIBE] });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.match(log, /Repository cache: the mirror is damaged \(.*\); rebuilding it from GitLab\./);
    assert.equal(run.repoCache, 'cold');
    assert.deepEqual(seen(log), seen(interrupted.log), 'the workspace is as before the damage');
    assert.equal(gitIn(mirror, ['fsck', '--connectivity-only', '--no-progress']).trim(), '');
  });

  test('eviction: least recently used mirrors go first, mirrors in use stay, the limit holds', async () => {
    const before = await listMirrors(cacheDir);
    const size = before[0]?.sizeBytes ?? 0;
    assert.ok(size > 0);
    // Two more projects, each a mirror of its own.
    for (const name of ['acme/second', 'acme/third']) {
      gitlab.addProject({ path: name, members: [{ userId: botId, accessLevel: 30 }] });
      const { run } = await runToEnd(alice, { connectionId: aliceConnection, project: name, command: ['true'] });
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      assert.equal(run.repoCache, 'cold');
    }
    const three = await listMirrors(cacheDir);
    assert.deepEqual(three.map((mirror) => mirror.projectPath), ['acme/cached', 'acme/second', 'acme/third'], 'least recently used first');
    const total = three.reduce((sum, mirror) => sum + mirror.sizeBytes, 0);

    // A run holds acme/cached in use: a prune to nothing leaves it and removes the idle ones, oldest first.
    const cached = three[0]!;
    const use = (await takeLock(`${cached.path}.use`, { shared: true, wait: true }))!;
    try {
      const limit = total - 1;
      const pruned = await pruneMirrors(cacheDir, limit);
      assert.deepEqual(pruned.removed.map((mirror) => mirror.projectPath), ['acme/second'], 'the oldest idle mirror went');
      assert.ok(pruned.totalBytes <= limit);
      const none = await pruneMirrors(cacheDir, 0);
      assert.deepEqual(none.removed.map((mirror) => mirror.projectPath), ['acme/third']);
      assert.deepEqual((await listMirrors(cacheDir)).map((mirror) => [mirror.projectPath, mirror.inUse]), [['acme/cached', true]]);
    } finally {
      await use.release();
    }
  });

  test('a run that only reads an up-to-date mirror does not wait for another reader of it', async () => {
    // A token without an API scope: the run lists GitLab's refs itself, and a mirror that matches them is only read.
    const token = gitlab.addToken(botId, { scopes: ['read_repository', 'write_repository'], expiresAt: '2027-06-30' });
    tokens.push(token);
    const connected = await forgelink.call(alice, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
    assert.equal(connected.status, 201, connected.text);
    const body = { connectionId: connected.json.id, project: 'acme/cached', command: ['true'] };
    const first = await runToEnd(alice, body);
    assert.equal(first.run.status, 'succeeded', first.log);
    const mirrorDir = path.dirname(await theMirror());
    // Another run checking the mirror holds its lock shared; a writer (a fetch, a rebuild) would wait for it.
    const reader = (await takeLock(`${mirrorDir}.lock`, { shared: true, wait: true }))!;
    try {
      const id = await startRun(alice, body);
      let deadline: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        deadline = setTimeout(() => reject(new Error('the run waited for the other reader of the mirror')), 90_000);
      });
      const second = await Promise.race([finish(alice, id), stuck]).finally(() => clearTimeout(deadline));
      const log = await logText(alice, id);
      assert.equal(second.status, 'succeeded', log);
      assert.equal(second.repoCache, 'warm');
      assert.match(log, /Repository cache: warm, the mirror already matches GitLab; nothing to fetch\./);
    } finally {
      await reader.release();
    }
  });
});

describe('the repository cache under a small FORGELINK_REPO_CACHE_MAX, and off', () => {
  let gitlab: FakeGitLab;
  let botId: number;
  let token: string;
  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    botId = gitlab.addUser({ username: 'bot', name: 'Bot' }).id;
    for (const name of ['g/one', 'g/two']) gitlab.addProject({ path: name, members: [{ userId: botId, accessLevel: 30 }] });
    token = gitlab.addToken(botId, { scopes: ['api', 'write_repository'], expiresAt: '2027-06-30' });
  });
  after(async () => {
    await gitlab.close();
  });

  async function run(forgelink: TestForgelink, user: TestUser, connectionId: string, project: string): Promise<any> {
    const started = await forgelink.call(user, 'POST', '/api/v1/runs', { connectionId, project, command: ['true'] });
    assert.equal(started.status, 201, started.text);
    for (;;) {
      const current = await forgelink.call(user, 'GET', `/api/v1/runs/${started.json.id}`);
      if (['succeeded', 'failed', 'canceled', 'timed_out'].includes(current.json.status)) return current.json;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function withForgelink(repoCache: { enabled: boolean; maxBytes: number }, use: (forgelink: TestForgelink, user: TestUser, connectionId: string) => Promise<void>) {
    const forgelink = await startForgelink({ runs: { repoCache } });
    try {
      const user = await forgelink.addUser('carol');
      const response = await forgelink.call(user, 'POST', '/api/v1/connections', { baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, token });
      assert.equal(response.status, 201, response.text);
      await use(forgelink, user, response.json.id);
    } finally {
      await forgelink.close();
    }
  }

  test('each run ends with the cache under the limit but for the mirror it just used', async () => {
    await withForgelink({ enabled: true, maxBytes: 1 }, async (forgelink, user, connectionId) => {
      const first = await run(forgelink, user, connectionId, 'g/one');
      assert.equal(first.status, 'succeeded', JSON.stringify(first.error));
      assert.deepEqual((await listMirrors(repoCacheDir(forgelink.workDir))).map((mirror) => mirror.projectPath), ['g/one']);
      const second = await run(forgelink, user, connectionId, 'g/two');
      assert.equal(second.status, 'succeeded', JSON.stringify(second.error));
      assert.deepEqual((await listMirrors(repoCacheDir(forgelink.workDir))).map((mirror) => mirror.projectPath), ['g/two'], 'g/one was evicted');
      const log = await forgelink.call(user, 'GET', `/api/v1/runs/${second.id}/log`);
      assert.match(log.text, /Repository cache: removed the mirror of g\/one/);
    });
  });

  test('FORGELINK_REPO_CACHE=off: a plain clone, no mirror', async () => {
    await withForgelink({ enabled: false, maxBytes: 10 * 1024 ** 3 }, async (forgelink, user, connectionId) => {
      const done = await run(forgelink, user, connectionId, 'g/one');
      assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
      assert.equal(done.repoCache, 'off');
      assert.ok(done.timings.readyMs > 0);
      assert.deepEqual(await listMirrors(repoCacheDir(forgelink.workDir)), []);
    });
  });
});

test('runs of one process share one shared lock: another process sees it held until the last of them lets go', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-shared-hold-'));
  const file = path.join(dir, 'mirror.lock');
  // A lock is held on a descriptor of the lock file this process keeps open: one per lock taken.
  const descriptors = async () => {
    let count = 0;
    for (const entry of await readdir('/proc/self/fd')) if ((await readlink(`/proc/self/fd/${entry}`).catch(() => '')) === file) count += 1;
    return count;
  };
  try {
    const first = await holdShared(file);
    const second = await holdShared(file);
    let reads = 0;
    const read = async () => ++reads;
    assert.equal(await first.memo(read), 1);
    assert.equal(await second.memo(read), 1, 'what one holder read while holding is the other\'s too');
    assert.equal(await descriptors(), 1, 'one lock taken for both');
    // A lock taken on another open of the file, as another forgelink's would be, cannot be exclusive meanwhile.
    assert.equal(await takeLock(file, { shared: false, wait: false }), null);
    await first.release();
    assert.equal(await takeLock(file, { shared: false, wait: false }), null, 'still held by the second');
    await second.release();
    const exclusive = await takeLock(file, { shared: false, wait: false });
    assert.ok(exclusive, 'free once both let go');
    await exclusive.release();
    const again = await holdShared(file);
    assert.equal(await again.memo(read), 2, 'a new hold reads afresh');
    await again.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a run canceled while it waits for a shared lock stops waiting at once; the lock is given back when it comes', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-shared-cancel-'));
  const file = path.join(dir, 'mirror.lock');
  try {
    // Another holder (as another forgelink fetching would be) has the lock exclusively.
    const fetching = (await takeLock(file, { shared: false, wait: false }))!;
    const stop = new AbortController();
    const waiting = holdShared(file, stop.signal);
    const other = holdShared(file);
    stop.abort();
    await assert.rejects(waiting, (error: Error & { code?: string }) => error.code === 'canceled');
    await fetching.release();
    // The run that was not canceled gets the lock; once it lets go, nothing of the canceled wait is left holding it.
    const held = await other;
    await held.release();
    await waitFor('the shared lock to be free', async () => {
      const exclusive = await takeLock(file, { shared: false, wait: false });
      await exclusive?.release();
      return exclusive !== null;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a lock canceled while it is still being asked for stops waiting at once, whenever the cancel comes', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-lock-cancel-'));
  const file = path.join(dir, 'mirror.lock');
  try {
    const held = (await takeLock(file, { shared: false, wait: false }))!;
    // Canceled in the same turn as the call (while the lock file is opened), and after flock began waiting.
    for (const cancel of [(stop: AbortController) => stop.abort(), (stop: AbortController) => setImmediate(() => setTimeout(() => stop.abort(), 50))]) {
      const stop = new AbortController();
      const waiting = takeLock(file, { shared: false, wait: true, signal: stop.signal });
      cancel(stop);
      // The holder keeps the lock throughout: only the cancel can end the wait.
      await assert.rejects(waiting, (error: Error & { code?: string }) => error.code === 'canceled');
    }
    await held.release();
    const again = await takeLock(file, { shared: false, wait: false });
    assert.ok(again, 'no canceled wait is left holding the lock');
    await again.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
