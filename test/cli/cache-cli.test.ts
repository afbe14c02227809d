import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { takeLock } from '../../src/runs/repo-cache.ts';
import { failsWithOneLine, ok } from '../support/cli-checks.ts';
import { forgelinkCli } from '../support/processes.ts';

/** `forgelink cache list | prune` on a data directory holding real (small) mirrors. */
describe('forgelink cache list and prune, local on the data directory', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let cacheDir: string;
  const keys = { old: 'a'.repeat(32), recent: 'b'.repeat(32), busy: 'c'.repeat(32) };

  async function mirror(key: string, projectPath: string, lastUsedAt: string, commits: number): Promise<void> {
    const repo = join(cacheDir, key, 'repo.git');
    await mkdir(repo, { recursive: true });
    const git = (args: string[], cwd = repo) => execFileSync('git', args, { cwd, env: { PATH: '/usr/bin:/bin', HOME: home, GIT_CONFIG_NOSYSTEM: '1' } });
    git(['init', '--quiet', '--bare', '--template=', '.']);
    const work = join(home, `work-${key}`);
    git(['init', '--quiet', work], home);
    for (let i = 0; i < commits; i += 1) {
      await writeFile(join(work, `f${i}`), `${projectPath} ${i}\n`.repeat(200));
      git(['add', '.'], work);
      git(['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '--quiet', '-m', `c${i}`], work);
    }
    git(['push', '--quiet', repo, 'HEAD:refs/heads/main'], work);
    const record = { key, baseUrl: 'https://gitlab.example.com', projectId: null, projectPath, createdAt: lastUsedAt, lastUsedAt, lastFetchAt: lastUsedAt };
    await writeFile(join(cacheDir, `${key}.json`), JSON.stringify(record));
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'forgelink-cache-cli-'));
    env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, 'config'), FORGELINK_DATA_DIR: join(home, 'data') };
    cacheDir = join(home, 'data', 'repo-cache');
    await mirror(keys.old, 'g/old', '2026-01-01T00:00:00.000Z', 3);
    await mirror(keys.recent, 'g/recent', '2026-03-01T00:00:00.000Z', 3);
    await mirror(keys.busy, 'g/busy', '2025-12-01T00:00:00.000Z', 3);
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  test('list: least recently used first, sizes, which one is in use; prune keeps it and goes oldest first', async () => {
    const use = (await takeLock(join(cacheDir, `${keys.busy}.use`), { shared: true, wait: true }))!;
    try {
      const listed = JSON.parse(ok(await forgelinkCli(['cache', 'list', '--json'], { env })).stdout);
      assert.equal(listed.enabled, true);
      assert.equal(listed.dir, cacheDir);
      assert.deepEqual(listed.mirrors.map((m: { projectPath: string; inUse: boolean }) => [m.projectPath, m.inUse]), [['g/busy', true], ['g/old', false], ['g/recent', false]]);
      assert.ok(listed.mirrors.every((m: { sizeBytes: number }) => m.sizeBytes > 0));
      assert.equal(listed.totalBytes, listed.mirrors.reduce((sum: number, m: { sizeBytes: number }) => sum + m.sizeBytes, 0));
      const text = ok(await forgelinkCli(['cache', 'list'], { env })).stdout;
      assert.match(text, /^Repository cache on: .*repo-cache, .* of 10 GiB \(FORGELINK_REPO_CACHE_MAX\)$/m);
      assert.match(text, /in use {2}https:\/\/gitlab\.example\.com g\/busy$/m);

      // A limit one byte under the total: the oldest idle mirror goes, the busy (older still) one stays.
      const limit = listed.totalBytes - 1;
      const pruned = JSON.parse(ok(await forgelinkCli(['cache', 'prune', '--json'], { env: { ...env, FORGELINK_REPO_CACHE_MAX: String(limit) } })).stdout);
      assert.deepEqual(pruned.removed.map((m: { projectPath: string }) => m.projectPath), ['g/old']);
      assert.ok(pruned.totalBytes <= limit);
      await assert.rejects(stat(join(cacheDir, keys.old)));
      const all = JSON.parse(ok(await forgelinkCli(['cache', 'prune', '--all', '--json'], { env })).stdout);
      assert.deepEqual(all.removed.map((m: { projectPath: string }) => m.projectPath), ['g/recent']);
      const left = JSON.parse(ok(await forgelinkCli(['cache', 'list', '--json'], { env })).stdout);
      assert.deepEqual(left.mirrors.map((m: { projectPath: string }) => m.projectPath), ['g/busy']);
    } finally {
      await use.release();
    }
    const none = JSON.parse(ok(await forgelinkCli(['cache', 'prune', '--all', '--json'], { env })).stdout);
    assert.deepEqual(none.removed.map((m: { projectPath: string }) => m.projectPath), ['g/busy'], 'idle now, it goes too');
    assert.match(ok(await forgelinkCli(['cache', 'list'], { env })).stdout, /^No mirrors\.$/m);
  });

  test('bad values fail with one line naming the variable or flag', async () => {
    failsWithOneLine(await forgelinkCli(['cache', 'list'], { env: { ...env, FORGELINK_REPO_CACHE_MAX: 'lots' } }), /FORGELINK_REPO_CACHE_MAX/);
    failsWithOneLine(await forgelinkCli(['cache', 'list'], { env: { ...env, FORGELINK_REPO_CACHE: 'maybe' } }), /FORGELINK_REPO_CACHE/);
    const run = ['run', '--connection', 'con_x', '--project', 'g/p'];
    failsWithOneLine(await forgelinkCli([...run, '--depth', '0', '--', 'true'], { env }), /--depth: "0"/);
    failsWithOneLine(await forgelinkCli([...run, '--filter', 'tree:0', '--', 'true'], { env }), /--filter: "tree:0" is not supported; use blob:none/);
  });
});
