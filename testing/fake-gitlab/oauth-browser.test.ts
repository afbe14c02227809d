import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startFakeGitLab, type FakeGitLab, type FakeOAuthApplication } from './index.ts';
import { clientFor } from './test-support.ts';

/** Debian's Chromium, driven by playwright-core (no browser download). */
const CHROMIUM = '/usr/bin/chromium';

/** The sign-in, consent and redirect pages in a real browser, as the dashboard's browser tests use them. */
describe('OAuth pages of the fake in Chromium (HTTPS, subpath)', () => {
  let gl: FakeGitLab;
  let client: ReturnType<typeof clientFor>;
  let callback: Server;
  let redirect: string;
  let app: FakeOAuthApplication;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    gl = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    client = clientFor(gl);
    gl.addUser({ username: 'alice', name: 'Alice Liddell' });
    callback = createServer((request, response) => response.end(`callback ${request.url ?? ''}`));
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    redirect = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;
    app = gl.addOAuthApplication({ name: 'Forgelink', redirectUri: redirect, scopes: ['api', 'read_user'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    // The fake's certificate comes from its own test CA, which this browser profile does not know.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    context.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    context.on('weberror', (error) => problems.push(String(error.error())));
    page = await context.newPage();
  });
  after(async () => {
    await browser.close();
    await new Promise<void>((resolve) => callback.close(() => resolve()));
    await client.close();
    await gl.close();
  });

  const authorizeUrl = (state: string, scope: string) =>
    `${gl.baseUrl}/oauth/authorize?${new URLSearchParams({ client_id: app.clientId, redirect_uri: redirect, response_type: 'code', scope, state })}`;

  test('sign in, authorize, come back with a code; then the Redirecting page and Deny', async () => {
    await page.goto(authorizeUrl('first', 'api'));
    assert.equal(page.url(), `${gl.baseUrl}/users/sign_in`);
    await page.getByLabel('Username or primary email').fill('alice');
    await page.getByLabel('Password').fill('any password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Authorize Forgelink to use your account?' }).waitFor();
    await page.getByRole('button', { name: 'Authorize Forgelink' }).click();
    await page.waitForURL((url) => url.href.startsWith(redirect));
    const first = new URL(page.url());
    assert.equal(first.searchParams.get('state'), 'first');
    const exchanged = await client.post('/oauth/token', {
      grant_type: 'authorization_code',
      code: first.searchParams.get('code'),
      redirect_uri: redirect,
      client_id: app.clientId,
      client_secret: app.clientSecret,
    });
    assert.equal(exchanged.status, 200);
    await exchanged.text();

    // Authorized before with these scopes: GitLab's "Redirecting" page sends the browser on by script.
    await page.goto(authorizeUrl('second', 'api'));
    await page.waitForURL((url) => url.href.startsWith(redirect) && url.searchParams.get('state') === 'second');
    assert.match(new URL(page.url()).searchParams.get('code') ?? '', /^[0-9a-f]{64}$/);

    await page.goto(authorizeUrl('third', 'read_user'));
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForURL((url) => url.href.startsWith(redirect) && url.searchParams.get('state') === 'third');
    assert.equal(new URL(page.url()).searchParams.get('error'), 'access_denied');
    assert.deepEqual(problems, []);
    assert.deepEqual(gl.oauthStats(), { authorizations: 2, codeExchanges: 1, refreshes: 0, revocations: 0 });
  });
});
