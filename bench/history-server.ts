/**
 * The bench's GitLab in a process of its own (`fork`ed by repo-cache.ts), as a real GitLab is: the fake GitLab over
 * HTTPS serving the generated history as `bench/history`. It tells its parent where it is, then commits on request.
 */
import { execFile } from 'node:child_process';
import { copyFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { startFakeGitLab } from '../testing/fake-gitlab/index.ts';

const run = promisify(execFile);
const GIT_ENV = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };

const source = process.argv[2];
if (source === undefined || process.send === undefined) throw new Error('usage: fork history-server.ts <generated repository>');
const gitlab = await startFakeGitLab({ tls: true });
const bot = gitlab.addUser({ username: 'bench-bot', name: 'Bench Bot' }).id;
const project = gitlab.addProject({ path: 'bench/history', protectDefaultBranch: false, members: [{ userId: bot, accessLevel: 30 }] });
// The generated history becomes the project's: its packs copied in, `main` pointed at its tip.
const target = gitlab.repoPath(project.id);
for (const name of await readdir(path.join(source, 'objects', 'pack'))) {
  await copyFile(path.join(source, 'objects', 'pack', name), path.join(target, 'objects', 'pack', name));
}
const tip = (await run('git', ['-C', source, 'rev-parse', 'refs/heads/main'], { env: GIT_ENV })).stdout.trim();
await run('git', ['-C', target, 'update-ref', 'refs/heads/main', tip], { env: GIT_ENV });
const token = gitlab.addToken(bot, { scopes: ['api', 'write_repository'], expiresAt: '2030-01-01' });

process.on('message', (message: { type: 'commit'; content: string } | { type: 'close' }) => {
  if (message.type === 'commit') {
    void gitlab.commitFile(project.id, { branch: 'main', path: 'NEWS.md', content: message.content }).then((sha) => process.send?.({ type: 'committed', sha }));
  } else {
    void gitlab.close().then(() => process.exit(0));
  }
});
process.send({ type: 'ready', baseUrl: gitlab.baseUrl, caPem: gitlab.caPem, caFile: gitlab.caFile, token });
