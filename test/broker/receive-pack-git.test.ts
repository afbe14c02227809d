import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { runCgi } from '../../testing/fake-gitlab/cgi.ts';
import { decideGitRequest, decideReceivePack, parseReceivePackCommands, type ReceivePackCommands } from '../../src/broker/policy.ts';
import { runPolicy } from './fixtures.ts';

/**
 * The receive-pack parser against what real git sends: a plain `git http-backend` behind a recording HTTP server,
 * pushed to by the git CLI (new branch with push options, several refs, delete, force, tag, a SHA-256 repository).
 */

const run = promisify(execFile);

type Recorded = { method: string; path: string; query: string; body: Uint8Array };

let dir = '';
let server: Server;
let origin = '';
const recorded: Recorded[] = [];
const children = new Set<ChildProcess>();

function gitEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'a',
    GIT_AUTHOR_EMAIL: 'a@example.com',
    GIT_COMMITTER_NAME: 'a',
    GIT_COMMITTER_EMAIL: 'a@example.com',
    GIT_TERMINAL_PROMPT: '0',
  };
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: gitEnv() });
  return stdout.trim();
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'forgelink-receive-pack-'));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = new Uint8Array(Buffer.concat(chunks));
      recorded.push({ method: req.method ?? '', path: url.pathname, query: url.search, body });
      void runCgi({
        command: 'git',
        args: ['http-backend'],
        env: {
          ...gitEnv(),
          GIT_PROJECT_ROOT: path.join(dir, 'srv'),
          GIT_HTTP_EXPORT_ALL: '1',
          REMOTE_USER: 'agent',
          REQUEST_METHOD: req.method ?? 'GET',
          PATH_INFO: url.pathname,
          QUERY_STRING: url.search.replace(/^\?/, ''),
          CONTENT_TYPE: req.headers['content-type'] ?? '',
          CONTENT_LENGTH: String(body.length),
        },
        body: body.length === 0 ? null : new Response(body).body,
        children,
      }).then(async (response) => {
        res.writeHead(response.status, Object.fromEntries(response.headers));
        res.end(Buffer.from(await response.arrayBuffer()));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

/** A bare repository served at `/<name>.git` with `main` holding one commit, and a clone to push from. */
async function repository(name: string, format: 'sha1' | 'sha256'): Promise<{ work: string; main: string }> {
  const bare = path.join(dir, 'srv', `${name}.git`);
  const work = path.join(dir, `${name}-work`);
  await run('git', ['init', '-q', '--bare', `--object-format=${format}`, bare], { env: gitEnv() });
  await git(bare, 'config', 'receive.advertisePushOptions', 'true');
  await run('git', ['init', '-q', `--object-format=${format}`, '-b', 'main', work], { env: gitEnv() });
  await git(work, 'commit', '-q', '--allow-empty', '-m', 'first');
  await git(work, 'push', '-q', bare, 'main');
  await git(work, 'remote', 'add', 'origin', `${origin}/${name}.git`);
  return { work, main: await git(work, 'rev-parse', 'HEAD') };
}

/** Runs a push and returns what the parser makes of the receive-pack body git sent. */
async function push(work: string, ...args: string[]): Promise<{ parsed: ReceivePackCommands; body: Uint8Array; requests: Recorded[] }> {
  const start = recorded.length;
  await git(work, 'push', '-q', ...args);
  const requests = recorded.slice(start);
  const post = requests.find((request) => request.method === 'POST' && request.path.endsWith('/git-receive-pack'));
  assert.ok(post, 'git sent a receive-pack request');
  return { parsed: parseReceivePackCommands(post.body), body: post.body, requests };
}

const ZERO1 = '0'.repeat(40);

test('a new branch with push options: the command, the capabilities, the options, then the pack', async () => {
  const { work } = await repository('group/app', 'sha1');
  await git(work, 'commit', '-q', '--allow-empty', '-m', 'second');
  const head = await git(work, 'rev-parse', 'HEAD');
  const { parsed, body, requests } = await push(work, '-o', 'merge_request.create', '-o', 'merge_request.title=Fix it', 'origin', 'HEAD:refs/heads/feature/x');
  assert.equal(parsed.error, null);
  assert.equal(parsed.complete, true);
  assert.deepEqual(parsed.commands, [{ oldId: ZERO1, newId: head, ref: 'refs/heads/feature/x' }]);
  // git asks for report-status-v2 where the server offers it, report-status otherwise
  assert.ok(parsed.capabilities.some((capability) => capability.startsWith('report-status')), parsed.capabilities.join(' '));
  assert.ok(parsed.capabilities.includes('push-options') && parsed.capabilities.includes('object-format=sha1'), parsed.capabilities.join(' '));
  assert.deepEqual(parsed.pushOptions, ['merge_request.create', 'merge_request.title=Fix it']);
  assert.equal(new TextDecoder().decode(body.subarray(parsed.length, parsed.length + 4)), 'PACK');

  const policy = runPolicy({ projectPath: 'group/app', existingBranches: new Set(['main']), protectedBranches: [] });
  for (const request of requests) {
    assert.deepEqual(decideGitRequest(policy, request), { allow: true }, `${request.method} ${request.path}${request.query}`);
  }
  assert.deepEqual(decideReceivePack(policy, parsed), { allow: true });
  // every prefix of what git sent is incomplete until the commands end
  for (const cut of [0, 3, 4, 50, parsed.length - 1]) assert.equal(parseReceivePackCommands(body.subarray(0, cut)).complete, false, `cut at ${cut}`);
});

test('several refs, a delete (no pack follows), a force update and a tag, as git sends them', async () => {
  const { work, main } = await repository('group/many', 'sha1');
  await git(work, 'push', '-q', 'origin', 'main:refs/heads/keep', 'main:refs/heads/gone');
  await git(work, 'commit', '-q', '--allow-empty', '-m', 'second');
  const second = await git(work, 'rev-parse', 'HEAD');
  const several = await push(work, 'origin', 'HEAD:refs/heads/keep', 'HEAD:refs/heads/new');
  assert.deepEqual(several.parsed.commands, [
    { oldId: main, newId: second, ref: 'refs/heads/keep' },
    { oldId: ZERO1, newId: second, ref: 'refs/heads/new' },
  ]);

  const deleted = await push(work, 'origin', '--delete', 'gone');
  assert.deepEqual(deleted.parsed.commands, [{ oldId: main, newId: ZERO1, ref: 'refs/heads/gone' }]);
  assert.equal(deleted.parsed.length, deleted.body.length, 'a delete-only push sends no pack');

  await git(work, 'checkout', '-q', '--orphan', 'other');
  await git(work, 'commit', '-q', '--allow-empty', '-m', 'unrelated');
  const unrelated = await git(work, 'rev-parse', 'HEAD');
  const forced = await push(work, '--force', 'origin', 'HEAD:refs/heads/keep');
  assert.deepEqual(forced.parsed.commands, [{ oldId: second, newId: unrelated, ref: 'refs/heads/keep' }]);
  const policy = runPolicy({ projectPath: 'group/many', existingBranches: new Set(['main', 'keep', 'gone']), protectedBranches: [] });
  const isAncestor = (oldId: string, newId: string): boolean => !(oldId === second && newId === unrelated);
  assert.equal(decideReceivePack(policy, forced.parsed, { isAncestor }).allow, false);
  assert.equal((decideReceivePack(policy, forced.parsed, { isAncestor }) as { rule: string }).rule, 'push.force_existing');
  assert.equal((decideReceivePack(policy, deleted.parsed) as { rule: string }).rule, 'push.delete_existing');

  await git(work, 'tag', 'v1');
  const tagged = await push(work, 'origin', 'refs/tags/v1');
  assert.deepEqual(tagged.parsed.commands, [{ oldId: ZERO1, newId: unrelated, ref: 'refs/tags/v1' }]);
  assert.equal((decideReceivePack(policy, tagged.parsed) as { rule: string }).rule, 'push.tag');
});

test('a SHA-256 repository: 64-digit ids and object-format=sha256', async () => {
  const { work } = await repository('group/modern', 'sha256');
  await git(work, 'commit', '-q', '--allow-empty', '-m', 'second');
  const head = await git(work, 'rev-parse', 'HEAD');
  assert.equal(head.length, 64);
  const { parsed, body } = await push(work, 'origin', 'HEAD:refs/heads/feature/y');
  assert.equal(parsed.error, null);
  assert.deepEqual(parsed.commands, [{ oldId: '0'.repeat(64), newId: head, ref: 'refs/heads/feature/y' }]);
  assert.ok(parsed.capabilities.includes('object-format=sha256'), parsed.capabilities.join(' '));
  assert.equal(new TextDecoder().decode(body.subarray(parsed.length, parsed.length + 4)), 'PACK');
});
