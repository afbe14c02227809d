import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MergeRequestDeps } from './merge-requests.ts';
import { postReceive } from './post-receive.ts';
import { checkChanges, parseChanges } from './pre-receive.ts';
import type { FakeProject, FakeState, FakeUser } from './state.ts';

const HOOK_SCRIPT = fileURLToPath(new URL('./hooks/git-hook.ts', import.meta.url));

export interface HookServerOptions extends MergeRequestDeps {
  /** Directory for the socket and the hook scripts (inside the fake's temp dir). */
  dir: string;
  secret: string;
  webUrlOf(project: FakeProject): string;
}

export interface HookServer {
  socketPath: string;
  hooksDir: string;
  close(): Promise<void>;
}

/** What /internal/allowed and /internal/post_receive receive from the hook (lib/api/internal/base.rb params). */
interface HookPayload {
  glId: string;
  glRepository: string;
  changes: string;
  pushOptions: string[];
  env: Record<string, string>;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The hooks git runs: a shell wrapper starting the hook script with the fake's own Node. When the fake runs with
 * Node's compile cache (NODE_COMPILE_CACHE, as `npm test` sets it), the hooks use it too: git starts one per push
 * and ref update batch, and each would otherwise strip the script's types again.
 */
function writeHooks(hooksDir: string): void {
  mkdirSync(hooksDir, { recursive: true });
  const cache = process.env.NODE_COMPILE_CACHE;
  const env = cache === undefined || cache === '' ? '' : `NODE_COMPILE_CACHE=${shellQuote(cache)} `;
  for (const kind of ['pre-receive', 'post-receive']) {
    const path = join(hooksDir, kind);
    writeFileSync(path, `#!/bin/sh\n${env}exec ${shellQuote(process.execPath)} --no-warnings ${shellQuote(HOOK_SCRIPT)} ${kind}\n`);
    chmodSync(path, 0o755);
  }
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      try {
        resolve(JSON.parse(text) as unknown);
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

function parsePayload(body: unknown): HookPayload | null {
  if (typeof body !== 'object' || body === null) return null;
  const record = body as Record<string, unknown>;
  if (typeof record.glId !== 'string' || typeof record.glRepository !== 'string' || typeof record.changes !== 'string') return null;
  const pushOptions = Array.isArray(record.pushOptions) ? record.pushOptions.filter((o): o is string => typeof o === 'string') : [];
  const env: Record<string, string> = {};
  if (typeof record.env === 'object' && record.env !== null) {
    for (const [key, value] of Object.entries(record.env)) if (typeof value === 'string' && value !== '') env[key] = value;
  }
  return { glId: record.glId, glRepository: record.glRepository, changes: record.changes, pushOptions, env };
}

function resolveActors(state: FakeState, payload: HookPayload): { user: FakeUser; project: FakeProject } | null {
  const userId = Number.parseInt(payload.glId.replace(/^user-/, ''), 10);
  const projectId = Number.parseInt(payload.glRepository.replace(/^project-/, ''), 10);
  const user = state.users.get(userId);
  const project = state.projects.get(projectId);
  return user && project ? { user, project } : null;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * The fake's internal API for git hooks, on a unix socket in its temp dir (GitLab's hooks reach Rails
 * through Workhorse's socket the same way). Only requests carrying the secret are answered.
 */
export async function startHookServer(options: HookServerOptions): Promise<HookServer> {
  const hooksDir = join(options.dir, 'hooks');
  const socketPath = join(options.dir, 'gitlab.socket');
  writeHooks(hooksDir);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers['x-fake-gitlab-hook-secret'] !== options.secret) return send(res, 401, { message: '401 Unauthorized' });
    const payload = parsePayload(await readJson(req));
    const actors = payload && resolveActors(options.state, payload);
    if (!payload || !actors) return send(res, 404, { status: false, message: 'The project you were looking for could not be found.' });
    const changes = parseChanges(payload.changes);
    const webUrl = options.webUrlOf(actors.project);
    if (req.url === '/api/v4/internal/allowed') {
      const quarantineEnv: Record<string, string> = {};
      for (const key of ['GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_QUARANTINE_PATH']) {
        const value = payload.env[key];
        if (value !== undefined) quarantineEnv[key] = value;
      }
      const message = await checkChanges(
        { repos: options.repos, project: actors.project, userId: actors.user.id, webUrl, quarantineEnv },
        changes,
      );
      return send(res, 200, message === null ? { status: true, message: '' } : { status: false, message });
    }
    if (req.url === '/api/v4/internal/post_receive') {
      const messages = await postReceive(
        { state: options.state, repos: options.repos, project: actors.project, user: actors.user, webUrl },
        changes,
        payload.pushOptions,
      );
      return send(res, 200, { messages, reference_counter_decreased: true });
    }
    return send(res, 404, { message: '404 Not Found' });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { status: false, message: `Internal error: ${String(error)}` }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    socketPath,
    hooksDir,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
