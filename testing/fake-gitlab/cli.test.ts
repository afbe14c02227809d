import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Agent, fetch } from 'undici';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));

test('fake-gitlab --help describes the flags', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--help']);
  for (const flag of ['--tls', '--base-path', '--port', '--host', '--json', '--oauth-redirect', '--oauth-token-lifetime']) {
    assert.match(stdout, new RegExp(flag));
  }
});

test('fake-gitlab serves a seeded demo over HTTPS under a subpath and stops on SIGTERM', async () => {
  const child = spawn(process.execPath, [CLI, '--tls', '--base-path', '/gitlab', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', () => reject(new Error('fake-gitlab exited before printing')));
    });
    lines.close();
    const started = JSON.parse(first) as { baseUrl: string; token: string; caFile: string };
    assert.match(started.baseUrl, /^https:\/\/127\.0\.0\.1:\d+\/gitlab$/);
    assert.match(started.token, /^glpat-/);

    const { readFile } = await import('node:fs/promises');
    const dispatcher = new Agent({ connect: { ca: await readFile(started.caFile, 'utf8') } });
    const response = await fetch(`${started.baseUrl}/api/v4/projects?membership=true&min_access_level=30&archived=false`, {
      headers: { 'PRIVATE-TOKEN': started.token },
      dispatcher,
    });
    assert.equal(response.status, 200);
    const projects = (await response.json()) as Array<{ path_with_namespace: string }>;
    assert.deepEqual(projects.map((p) => p.path_with_namespace).sort(), [
      'acme/platform/api',
      'acme/platform/web',
      'demo/playground',
    ]);
    await dispatcher.close();

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    await assert.rejects(access(started.caFile), 'the CA file is removed on exit');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('fake-gitlab --oauth-redirect registers a demo OAuth application and prints its credentials', async () => {
  const redirect = 'http://127.0.0.1:8080/integrations/gitlab/callback';
  const child = spawn(process.execPath, [CLI, '--json', '--oauth-redirect', redirect, '--oauth-token-lifetime', '60'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', () => reject(new Error('fake-gitlab exited before printing')));
    });
    lines.close();
    const started = JSON.parse(first) as {
      baseUrl: string;
      oauth: { clientId: string; clientSecret: string; redirectUris: string[]; scopes: string[] };
    };
    assert.match(started.oauth.clientId, /^[0-9a-f]{64}$/);
    assert.match(started.oauth.clientSecret, /^gloas-[0-9a-f]{64}$/);
    assert.deepEqual(started.oauth.redirectUris, [redirect]);

    // The application is live: /oauth/authorize sends the browser to sign in first.
    const query = new URLSearchParams({ client_id: started.oauth.clientId, redirect_uri: redirect, response_type: 'code', scope: 'api' });
    const authorize = await fetch(`${started.baseUrl}/oauth/authorize?${query}`, { redirect: 'manual' });
    assert.equal(authorize.status, 302);
    assert.equal(authorize.headers.get('location'), `${started.baseUrl}/users/sign_in`);
    await authorize.text();

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
