import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { gitlabGit, gitlabGitEnv, pinnedAddress } from '../../src/runs/gitlab-git.ts';

/**
 * forgelink's own git against GitLab on the host (src/runs/gitlab-git.ts): the address it connects to is the one the
 * outbound-address policy allowed, the token travels in its environment only, and it follows no redirect.
 */

const LOOPBACK = { allow: ['127.0.0.0/8'] };
const GIT_ENV = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };

describe('pinnedAddress', () => {
  test('a name that resolves only to a metadata or unallowed private address is refused, naming the address', async () => {
    await assert.rejects(
      pinnedAddress('https://gitlab.example.com', { allow: [] }, async () => [{ address: '169.254.169.254', family: 4 }]),
      (error: Error & { code?: string }) => error.code === 'gitlab_blocked_address' && /169\.254\.169\.254/.test(error.message),
    );
    await assert.rejects(
      pinnedAddress('https://gitlab.example.com', { allow: [] }, async () => [{ address: '10.1.2.3', family: 4 }]),
      (error: Error & { code?: string }) => error.code === 'gitlab_blocked_address' && /FORGELINK_OUTBOUND_ALLOW/.test(error.message),
    );
  });

  test('the first address the policy allows is the one pinned; an address literal is checked as it is', async () => {
    const resolve = async () => [
      { address: '10.1.2.3', family: 4 },
      { address: '93.184.215.14', family: 4 },
    ];
    assert.equal(await pinnedAddress('https://gitlab.example.com', { allow: [] }, resolve), '93.184.215.14');
    assert.equal(await pinnedAddress('https://gitlab.example.com', { allow: ['10.0.0.0/8'] }, resolve), '10.1.2.3');
    assert.equal(await pinnedAddress('https://127.0.0.1:8443', LOOPBACK, async () => assert.fail('an address literal is not resolved')), '127.0.0.1');
    await assert.rejects(pinnedAddress('https://[::1]:8443', { allow: [] }), /loopback/);
  });

  test('a name that does not resolve is GitLab being unreachable, naming the host', async () => {
    const notFound = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND gitlab.invalid'), { code: 'ENOTFOUND' });
    };
    await assert.rejects(
      pinnedAddress('https://gitlab.invalid', { allow: [] }, notFound),
      (error: Error & { code?: string }) => error.code === 'gitlab_unreachable' && /gitlab\.invalid/.test(error.message),
    );
  });
});

test('the token is in one header value of the environment only; the address is pinned and redirects are off', () => {
  const token = 'glpat-HOST-GIT-CANARY-0001';
  const env = gitlabGitEnv({ cloneUrl: 'https://gitlab.example.com:8443/group/app.git', address: '93.184.215.14', token, ca: { file: '/run/ca.pem', emptyDir: '/run/no-ca' } });
  const basic = Buffer.from(`oauth2:${token}`).toString('base64');
  const holders = Object.entries(env).filter(([, value]) => value.includes(token) || value.includes(basic));
  assert.deepEqual(holders.map(([key]) => key), ['GIT_CONFIG_VALUE_0']);
  assert.equal(env.GIT_CONFIG_KEY_0, 'http.extraHeader');
  const config = new Map<string, string>();
  for (let i = 0; i < Number(env.GIT_CONFIG_COUNT); i += 1) config.set(env[`GIT_CONFIG_KEY_${i}`] as string, env[`GIT_CONFIG_VALUE_${i}`] as string);
  assert.equal(config.get('http.curloptResolve'), 'gitlab.example.com:8443:93.184.215.14');
  assert.equal(config.get('http.followRedirects'), 'false');
  assert.equal(config.get('protocol.allow'), 'never');
  assert.equal(config.get('protocol.https.allow'), 'always');
  assert.equal(config.get('http.sslCAInfo'), '/run/ca.pem');
  // The bundle alone: not the system's certificate directory besides.
  assert.equal(config.get('http.sslCAPath'), '/run/no-ca');
  assert.equal(env.GIT_CONFIG_NOSYSTEM, '1');
  assert.equal(gitlabGitEnv({ cloneUrl: 'http://gitlab.example.com/a/b.git', address: '2001:db8::1', token, ca: null }).GIT_CONFIG_VALUE_1, 'gitlab.example.com:80:[2001:db8::1]');
});

describe('against the fake GitLab over HTTPS', () => {
  let gitlab: FakeGitLab;
  let token: string;
  let cloneUrl: string;
  let dir: string;
  let projectId: number;

  before(async () => {
    gitlab = await startFakeGitLab({ tls: true });
    const user = gitlab.addUser({ username: 'dev' });
    projectId = gitlab.addProject({ path: 'acme/app', members: [{ userId: user.id, accessLevel: 30 }] }).id;
    token = gitlab.addToken(user.id, { scopes: ['api', 'write_repository'] });
    cloneUrl = `${gitlab.baseUrl}/acme/app.git`;
    dir = await mkdtemp(path.join(tmpdir(), 'forgelink-gitlab-git-'));
  });
  after(async () => {
    await gitlab.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('fetches into a bare repository and lists the refs; nothing of the token is left on disk', async () => {
    const repo = path.join(dir, 'mirror.git');
    execFileSync('git', ['init', '--quiet', '--bare', repo], { env: GIT_ENV });
    const git = await gitlabGit({ cloneUrl, baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, policy: LOOPBACK, token: async () => token, dir });
    let progress = '';
    await git.fetch(repo, ['+refs/heads/*:refs/heads/*'], { timeoutMs: 60_000, onProgress: (chunk) => (progress += chunk) });
    const listing = await git.lsRemote(['HEAD', 'refs/heads/*'], { timeoutMs: 60_000 });
    const main = /^([0-9a-f]{40})\trefs\/heads\/main$/m.exec(listing)?.[1];
    assert.ok(main, listing);
    assert.match(listing, /^ref: refs\/heads\/main\tHEAD$/m);
    assert.equal(execFileSync('git', ['-C', repo, 'rev-parse', 'refs/heads/main'], { env: GIT_ENV, encoding: 'utf8' }).trim(), main);
    assert.ok(!progress.includes(token));
    const basic = Buffer.from(`oauth2:${token}`).toString('base64');
    for (const file of ['config', 'packed-refs', 'HEAD']) {
      const content = await readFile(path.join(repo, file), 'utf8').catch(() => '');
      assert.ok(!content.includes(token) && !content.includes(basic), `${file} holds the token`);
    }
    // The basic header went with the first request: GitLab never had to ask (no 401 round trip).
    const gitRequests = gitlab.requests.filter((request) => request.path.startsWith('/acme/app.git/'));
    assert.ok(gitRequests.length > 0);
    assert.ok(gitRequests.every((request) => request.authorized), JSON.stringify(gitRequests.map((request) => [request.path, request.authorized])));
  });

  test('a bare clone holds every branch and every tag, even one no branch reaches, with the configuration given', async () => {
    const repoPath = gitlab.repoPath(projectId);
    execFileSync('git', ['-C', repoPath, 'branch', 'gone', 'main'], { env: GIT_ENV });
    await gitlab.commitFile(projectId, { branch: 'gone', path: 'only-here.txt', content: 'x\n' });
    execFileSync('git', ['-C', repoPath, 'tag', 'orphan', 'gone'], { env: GIT_ENV });
    execFileSync('git', ['-C', repoPath, 'branch', '-D', 'gone'], { env: GIT_ENV });
    const git = await gitlabGit({ cloneUrl, baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, policy: LOOPBACK, token: async () => token, dir });
    const repo = path.join(dir, 'cloned.git');
    await git.cloneBare(repo, [['gc.autoDetach', 'false']], { timeoutMs: 60_000 });
    const listing = await git.lsRemote(['refs/heads/*', 'refs/tags/*'], { timeoutMs: 60_000 });
    const remote = listing.split('\n').filter((line) => /\trefs\/(heads|tags)\/[^^]+$/.test(line)).map((line) => line.replace('\t', ' ')).sort();
    const local = execFileSync('git', ['-C', repo, 'for-each-ref', '--format=%(objectname) %(refname)'], { env: GIT_ENV, encoding: 'utf8' }).trim().split('\n').sort();
    assert.deepEqual(local, remote);
    assert.ok(local.some((line) => line.endsWith(' refs/tags/orphan')));
    assert.equal(execFileSync('git', ['-C', repo, 'config', 'gc.autoDetach'], { env: GIT_ENV, encoding: 'utf8' }).trim(), 'false');
    assert.equal(execFileSync('git', ['-C', repo, 'rev-parse', '--is-bare-repository'], { env: GIT_ENV, encoding: 'utf8' }).trim(), 'true');
  });

  test('a token GitLab refuses fails the command with git\'s exit code', async () => {
    const git = await gitlabGit({ cloneUrl, baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, policy: LOOPBACK, token: async () => 'glpat-not-a-token', dir });
    await assert.rejects(git.lsRemote(['HEAD'], { timeoutMs: 60_000 }), (error: Error & { exitCode?: number }) => error.exitCode === 128);
  });

  test('git connects to the pinned address, not to what the system resolves the name to', async () => {
    // localhost resolves to 127.0.0.1, where the fake GitLab listens; the pin sends git to 127.0.0.2 on the same port.
    const port = Number(new URL(gitlab.baseUrl).port);
    const decoy = createTcpServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    let connections = 0;
    await new Promise<void>((resolve) => decoy.listen(port, '127.0.0.2', resolve));
    try {
      const baseUrl = `https://localhost:${port}`;
      const before = gitlab.connections.length;
      const git = await gitlabGit({ cloneUrl: `${baseUrl}/acme/app.git`, baseUrl, caPem: gitlab.caPem, policy: LOOPBACK, token: async () => token, dir, resolveAll: async () => [{ address: '127.0.0.2', family: 4 }] });
      await assert.rejects(git.lsRemote(['HEAD'], { timeoutMs: 60_000 }));
      assert.ok(connections >= 1, 'git did not connect to the pinned address');
      assert.equal(gitlab.connections.length, before, 'git connected to the address the system resolved');
    } finally {
      await new Promise((resolve) => decoy.close(resolve));
    }
  });
});

test('a redirect is not followed', async () => {
  let elsewhere = 0;
  const other = createHttpServer((_request, response) => {
    elsewhere += 1;
    response.end();
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  const redirecting = createHttpServer((request, response) => {
    response.writeHead(302, { location: `http://127.0.0.1:${(other.address() as AddressInfo).port}${request.url}` });
    response.end();
  });
  await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
  const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-gitlab-git-'));
  try {
    const baseUrl = `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`;
    const git = await gitlabGit({ cloneUrl: `${baseUrl}/acme/app.git`, baseUrl, caPem: null, policy: LOOPBACK, token: async () => 'glpat-redirected', dir });
    await assert.rejects(git.lsRemote(['HEAD'], { timeoutMs: 60_000 }));
    assert.equal(elsewhere, 0, 'git followed the redirect');
  } finally {
    await new Promise((resolve) => redirecting.close(resolve));
    await new Promise((resolve) => other.close(resolve));
    await rm(dir, { recursive: true, force: true });
  }
});
