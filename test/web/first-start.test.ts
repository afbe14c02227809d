import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createForgelink, type Forgelink } from '../../src/compose.ts';
import { readConfig } from '../../src/config/index.ts';
import { forgelinkCli, MAIN } from '../support/processes.ts';
import { launchBrowser } from './browser.ts';

const PASSWORD = 'correct horse battery';
const DEADLINE_MS = 30_000;

/** Only what a person's shell would have: no DATABASE_URL or FORGELINK_* from the test runner's environment. */
function serveEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    FORGELINK_DATA_DIR: dataDir,
    FORGELINK_LISTEN: '127.0.0.1:0',
    FORGELINK_MONITOR: 'off',
    ...extra,
  };
}

type Served = {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match in stdout; rejects if the process exits or the deadline passes first. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
};

/** `forgelink serve` as a real process; stdout is a pipe, never a terminal. */
function serve(env: NodeJS.ProcessEnv): Served {
  const child = spawn(process.execPath, [MAIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const listener of listeners) listener();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`no ${pattern} within ${DEADLINE_MS} ms:\n${stdout}\n${stderr}`)), DEADLINE_MS);
        const check = () => {
          const match = pattern.exec(stdout);
          if (match) done(null, match);
        };
        function done(error: Error | null, match?: RegExpExecArray) {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(error);
          else resolve(match as RegExpExecArray);
        }
        listeners.add(check);
        void exited.then(() => setImmediate(() => done(new Error(`forgelink serve exited:\n${stdout}\n${stderr}`))));
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

type Page = { status: number; body: string; cookies: string[]; location: string | null };

/** A browser's request without the browser: cookies and Origin sent as a browser would for a same-origin form. */
async function request(url: string, options: { cookies?: string[]; form?: Record<string, string> } = {}): Promise<Page> {
  const headers: Record<string, string> = {};
  if (options.cookies !== undefined && options.cookies.length > 0) headers.cookie = options.cookies.join('; ');
  let body: URLSearchParams | undefined;
  if (options.form !== undefined) {
    body = new URLSearchParams(options.form);
    headers.origin = new URL(url).origin;
  }
  const response = await fetch(url, { method: body === undefined ? 'GET' : 'POST', headers, body, redirect: 'manual' });
  const cookies = response.headers.getSetCookie().map((cookie) => cookie.split(';')[0] as string).filter((cookie) => !cookie.endsWith('='));
  return { status: response.status, body: await response.text(), cookies, location: response.headers.get('location') };
}

function hidden(body: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(body);
  assert.ok(match, `the form has a ${name} field`);
  return match[1] as string;
}

/** GET the link, then POST the form it shows, as a person would. */
async function submitSetup(link: string, fields: { username: string; password: string; confirm?: string }) {
  const form = await request(link);
  assert.equal(form.status, 200, form.body);
  const posted = await request(new URL('/setup', link).href, {
    cookies: form.cookies,
    form: {
      _csrf: hidden(form.body, '_csrf'),
      token: hidden(form.body, 'token'),
      username: fields.username,
      password: fields.password,
      confirm: fields.confirm ?? fields.password,
    },
  });
  return { form, posted };
}

describe('first start of forgelink serve, as a real process', () => {
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'forgelink-first-start-'));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test('JSON lines on a pipe, a one-time setup link that creates the signed-in admin; the next start only says where it is', async () => {
    const first = serve(serveEnv(dataDir));
    let link: string;
    try {
      const [, url] = await first.waitFor(/"setupUrl":"([^"]+)"/);
      link = url as string;
      await first.waitFor(/forgelink is ready: /);
    } finally {
      await first.stop();
    }
    const lines = first.stdout().trim().split('\n');
    const records = lines.map((line) => JSON.parse(line) as { level: number; msg: string; setupUrl?: string });
    const ready = records.find((record) => record.msg.startsWith('forgelink is ready: '));
    assert.match(ready?.msg ?? '', /^forgelink is ready: http:\/\/127\.0\.0\.1:\d+ \(dashboard and API\)$/);
    const setup = records.filter((record) => record.setupUrl !== undefined);
    assert.equal(setup.length, 1, 'one setup line');
    const { origin, pathname, searchParams } = new URL(link);
    assert.equal(pathname, '/setup');
    assert.match(searchParams.get('token') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok(setup[0]?.msg.includes(link), 'the message shows the link itself');
    assert.match(setup[0]?.msg ?? '', /or run: \.\/bin\/forgelink admin user add <name> --admin/, 'and the CLI alternative, as run from the checkout');
    assert.equal(ready?.msg, `forgelink is ready: ${origin} (dashboard and API)`);

    // The link printed by that start dies with it: a restart prints a new one.
    const second = serve(serveEnv(dataDir));
    try {
      const [, url] = await second.waitFor(/"setupUrl":"([^"]+)"/);
      const fresh = url as string;
      assert.notEqual(new URL(fresh).searchParams.get('token'), searchParams.get('token'), 'a new token each start');
      const stale = await request(new URL(`/setup?token=${searchParams.get('token')}`, fresh).href);
      assert.equal(stale.status, 403);
      assert.match(stale.body, /This setup link does not work/);
      assert.match(stale.body, /each start makes a new link/);
      assert.match(stale.body, /forgelink admin user add &lt;name&gt; --admin/, 'the page says how to get in another way');

      const { form, posted } = await submitSetup(fresh, { username: 'ada', password: PASSWORD });
      assert.match(form.body, /Set up forgelink/);
      assert.equal(posted.status, 303, posted.body);
      assert.equal(posted.location, '/');
      const session = posted.cookies.filter((cookie) => cookie.startsWith('forgelink_session='));
      assert.equal(session.length, 1, 'signed in');
      const dashboard = await request(new URL('/', fresh).href, { cookies: session });
      assert.equal(dashboard.status, 200);
      assert.match(dashboard.body, /Signed in as <strong>ada<\/strong>/);

      // Used once: the same link, by GET or by a second submission, is refused, and so is setup itself.
      const again = await request(fresh);
      assert.equal(again.status, 403);
      assert.match(again.body, /forgelink is already set up/);
      const resubmitted = await request(new URL('/setup', fresh).href, {
        cookies: form.cookies,
        form: { _csrf: hidden(form.body, '_csrf'), token: hidden(form.body, 'token'), username: 'eve', password: PASSWORD, confirm: PASSWORD },
      });
      assert.equal(resubmitted.status, 403);
      assert.match(resubmitted.body, /forgelink is already set up/);
    } finally {
      await second.stop();
    }

    const users = await forgelinkCli(['admin', 'user', 'list', '--json'], { env: serveEnv(dataDir) });
    assert.equal(users.code, 0, users.stderr);
    const { users: all } = JSON.parse(users.stdout) as { users: { name: string; isAdmin: boolean }[] };
    assert.deepEqual(all.map((user) => [user.name, user.isAdmin]), [['ada', true]], 'ada is the one user, an administrator');

    // With a user, a start says where the dashboard is and prints no link. The link line would come right with the
    // ready line, so everything is in the output once the process has stopped.
    const later = serve(serveEnv(dataDir));
    try {
      await later.waitFor(/forgelink is ready: http:\/\/127\.0\.0\.1:\d+ \(dashboard and API\)/);
    } finally {
      await later.stop();
    }
    assert.doesNotMatch(later.stdout(), /setup\?token=|No users yet/);
  });

  test('FORGELINK_LOG_FORMAT=pretty: readable lines, not JSON, even on a pipe', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-pretty-'));
    const served = serve(serveEnv(dir, { FORGELINK_LOG_FORMAT: 'pretty' }));
    try {
      await served.waitFor(/setup\?token=[A-Za-z0-9_-]{43} /);
    } finally {
      await served.stop();
      await rm(dir, { recursive: true, force: true });
    }
    const lines = served.stdout().trim().split('\n');
    for (const line of lines) {
      assert.match(line, /^\[\d\d:\d\d:\d\d\] (INFO|WARN|ERROR): \S/, line);
      assert.throws(() => JSON.parse(line) as unknown);
    }
    assert.ok(lines.some((line) => /^\[\d\d:\d\d:\d\d\] INFO: forgelink is ready: http:\/\/127\.0\.0\.1:\d+ \(dashboard and API\)/.test(line)));
    assert.ok(lines.some((line) => /^\[\d\d:\d\d:\d\d\] WARN: No users yet\. Next step: open http:\/\/127\.0\.0\.1:\d+\/setup\?token=/.test(line)));
    assert.doesNotMatch(served.stdout(), /\u001b\[/, 'no colour codes when stdout is not a terminal');
  });

  test('FORGELINK_LOG_FORMAT with another value: refused, naming the variable', async () => {
    const result = await forgelinkCli(['serve'], { env: serveEnv(dataDir, { FORGELINK_LOG_FORMAT: 'text' }) });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /^forgelink: FORGELINK_LOG_FORMAT: expected json or pretty/);
  });

  test('a taken port: exits non-zero and names FORGELINK_LISTEN, never says it executes runs, and makes no master key', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    const dir = await mkdtemp(path.join(tmpdir(), 'forgelink-port-'));
    try {
      const result = await forgelinkCli(['serve'], { env: serveEnv(dir, { FORGELINK_LISTEN: `127.0.0.1:${port}` }) });
      assert.notEqual(result.code, 0);
      assert.equal(result.stderr, `forgelink: 127.0.0.1:${port} is already in use: set FORGELINK_LISTEN to another host:port\n`);
      assert.doesNotMatch(result.stdout, /executing runs/);
      assert.doesNotMatch(result.stdout, /master key/);
      assert.ok(!(await readdir(dir)).includes('master.key'), `the data directory holds ${(await readdir(dir)).join(', ')}`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the setup page, in-process with a clock the test moves', () => {
  let dataDir: string;
  let forgelink: Forgelink;
  let base: string;
  let now = new Date('2026-03-01T09:00:00Z');
  const logs: string[] = [];

  /** A fresh start: the link its announcement printed. */
  async function start(): Promise<string> {
    logs.length = 0;
    forgelink = await createForgelink(
      readConfig({ FORGELINK_DATA_DIR: dataDir, FORGELINK_LISTEN: '127.0.0.1:0', FORGELINK_MONITOR: 'off', FORGELINK_LOG_FORMAT: 'json' }),
      {
        clock: { now: () => now },
        keyring: { versions: [{ id: 'k1', key: randomBytes(32) }] },
        logStream: new Writable({
          write(chunk, _encoding, done) {
            logs.push(String(chunk));
            done();
          },
        }),
      },
    );
    const listening = await forgelink.start({ listen: true });
    base = (listening as { url: string }).url;
    const line = logs.map((entry) => JSON.parse(entry) as { setupUrl?: string; expiresAt?: string }).find((entry) => entry.setupUrl !== undefined);
    assert.equal(line?.expiresAt, new Date(now.getTime() + 3600_000).toISOString(), 'valid for an hour');
    return line?.setupUrl as string;
  }

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'forgelink-setup-'));
  });
  after(async () => {
    await forgelink?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('an expired link is refused and says how to get a new one', async () => {
    const link = await start();
    now = new Date(now.getTime() + 3600_000 + 1000);
    const page = await request(link);
    assert.equal(page.status, 410);
    assert.match(page.body, /This setup link has expired/);
    assert.match(page.body, /Restart forgelink/);
    assert.match(page.body, /forgelink admin user add &lt;name&gt; --admin/);
    await forgelink.stop();
  });

  test('a form opened before the hour is up cannot be submitted after it', async () => {
    const link = await start();
    const form = await request(link);
    assert.equal(form.status, 200);
    now = new Date(now.getTime() + 3600_000);
    const posted = await request(`${base}/setup`, {
      cookies: form.cookies,
      form: { _csrf: hidden(form.body, '_csrf'), token: hidden(form.body, 'token'), username: 'ada', password: PASSWORD, confirm: PASSWORD },
    });
    assert.equal(posted.status, 410);
    assert.equal((await forgelink.storage.users.listUsers()).length, 0);
    await forgelink.stop();
  });

  test('refusals sit next to the field, keep the name typed, and leave the link usable', async () => {
    const link = await start();
    const signIn = await request(`${base}/sign-in`);
    assert.match(signIn.body, /Nobody has an account yet\. Open the one-time setup link forgelink printed when it started/, 'sign-in points to the way in');
    assert.match(signIn.body, /\.\/bin\/forgelink admin user add &lt;name&gt; --admin/, 'and to the command as run from the checkout');
    const cases = [
      { fields: { username: 'ada lovelace', password: PASSWORD }, field: 'username', message: 'A user name is 1–64 letters, digits, dots, dashes or underscores.' },
      { fields: { username: '', password: PASSWORD }, field: 'username', message: 'Choose a user name.' },
      { fields: { username: 'ada', password: 'short' }, field: 'password', message: 'A password needs at least 10 characters.' },
      { fields: { username: 'ada', password: PASSWORD, confirm: `${PASSWORD}!` }, field: 'confirm', message: 'The two passwords are not the same.' },
    ];
    for (const { fields, field, message } of cases) {
      const { posted } = await submitSetup(link, fields);
      assert.equal(posted.status, 400, message);
      assert.ok(posted.body.includes(`<p class="field-error" id="${field}-error"><span class="visually-hidden">Error: </span>${message}</p>`), message);
      assert.match(posted.body, new RegExp(`id="${field}"[^>]*aria-invalid="true"`), `${field} is marked invalid`);
      assert.ok(posted.body.includes(`value="${fields.username}"`), 'the name typed is kept');
    }
    // Every problem at once, each next to its field; the first one has the focus.
    const both = await submitSetup(link, { username: 'ada', password: 'short', confirm: 'different' });
    assert.equal(both.posted.status, 400);
    assert.ok(both.posted.body.includes('<p class="field-error" id="password-error"><span class="visually-hidden">Error: </span>A password needs at least 10 characters.</p>'));
    assert.ok(both.posted.body.includes('<p class="field-error" id="confirm-error"><span class="visually-hidden">Error: </span>The two passwords are not the same.</p>'));
    assert.match(both.posted.body, /id="password"[^>]*aria-invalid="true"[^>]*autofocus/);
    assert.match(both.posted.body, /id="confirm"[^>]*aria-invalid="true"/);

    // A form without its CSRF token: refused, nothing created.
    const form = await request(link);
    const forged = await request(`${base}/setup`, {
      cookies: form.cookies,
      form: { token: hidden(form.body, 'token'), username: 'mallory', password: PASSWORD, confirm: PASSWORD },
    });
    assert.equal(forged.status, 403);
    assert.match(forged.body, /did not come from this page/);
    assert.equal((await forgelink.storage.users.listUsers()).length, 0);

    // Two submissions of the same valid form at once: exactly one account.
    const fields = { _csrf: hidden(form.body, '_csrf'), token: hidden(form.body, 'token'), password: PASSWORD, confirm: PASSWORD };
    const results = await Promise.all(
      ['ada', 'grace'].map((username) => request(`${base}/setup`, { cookies: form.cookies, form: { ...fields, username } })),
    );
    const statuses = results.map((result) => result.status).sort();
    assert.equal(statuses[0], 303, 'one submission wins');
    assert.ok(statuses[1] === 403 || statuses[1] === 410, `the other is refused (already set up, or link used): ${statuses[1]}`);
    const users = await forgelink.storage.users.listUsers();
    assert.equal(users.length, 1);
    assert.equal(users[0]?.isAdmin, true);
    // The person signs in with a password: no API key was made that nobody saw (they create one when they need it).
    assert.deepEqual(await forgelink.storage.apiKeys.listKeys(users[0]!.id), []);
    assert.doesNotMatch((await request(`${base}/sign-in`)).body, /Nobody has an account yet/);
    await forgelink.stop();
  });

  test('in Chromium: the setup page, then the dashboard', async () => {
    await rm(dataDir, { recursive: true, force: true });
    dataDir = await mkdtemp(path.join(tmpdir(), 'forgelink-setup-'));
    const link = await start();
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await page.goto(link);
      await page.getByRole('heading', { name: 'Set up forgelink' }).waitFor();
      await browser.screenshot('setup');
      await page.getByLabel('User name').fill('ada');
      await page.getByLabel('Password', { exact: true }).fill('too short');
      await page.getByLabel('Password again').fill('too short');
      await page.getByRole('button', { name: 'Create the administrator and sign in' }).click();
      await page.getByText('A password needs at least 10 characters.').waitFor();
      assert.ok(await page.getByLabel('Password', { exact: true }).evaluate((field) => field === field.ownerDocument.activeElement), 'the field in error has the focus');
      await browser.screenshot('setup-refused');
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await page.getByLabel('Password again').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create the administrator and sign in' }).click();
      await page.getByText('Signed in as').waitFor();
      assert.equal(new URL(page.url()).pathname, '/');
      // The refused form's 400 is expected; anything else (a CSP refusal, a script error) is not.
      assert.deepEqual(browser.problems.filter((problem) => !/status of 400/.test(problem)), [], 'no console errors or CSP refusals');
    } finally {
      await browser.close();
      await forgelink.stop();
    }
  });
});
