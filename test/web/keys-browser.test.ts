import assert from 'node:assert/strict';
import { serve, type ServerType } from '@hono/node-server';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/server/web/index.ts';
import { startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { assertLayout, launchBrowser, type TestBrowser } from './browser.ts';

const PASSWORD = 'a long dashboard password';

describe('the API keys page in real Chromium', () => {
  let forgelink: TestForgelink;
  let browser: TestBrowser;
  let server: ServerType;
  let base: string;
  let alice: TestUser;
  let created: string;

  before(async () => {
    const target: { fetch: (request: Request, env: unknown) => Response | Promise<Response> } = { fetch: () => new Response('starting', { status: 503 }) };
    base = await new Promise<string>((resolve) => {
      server = serve({ fetch: (request, env) => target.fetch(request, env), hostname: '127.0.0.1', port: 0 }, (info) => resolve(`http://127.0.0.1:${info.port}`));
    });
    forgelink = await startForgelink({ oauth: { apps: [], publicUrl: base } });
    target.fetch = (request, env) => forgelink.app.fetch(request, env);
    alice = await forgelink.addUser('alice');
    await forgelink.storage.users.setPasswordHash(alice.id, await hashPassword(PASSWORD));
    browser = await launchBrowser();
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await forgelink?.close();
  });

  test('from the navigation to a new key, copied with the Copy button', async () => {
    const { page } = browser;
    await page.goto(`${base}/sign-in`);
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password or API key').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('heading', { name: 'API keys', exact: true }).waitFor();
    assert.equal(await page.locator('table.keys tbody tr').count(), 1);

    await page.getByLabel('Name').fill('build server');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByRole('heading', { name: 'Your new key “build server”' }).waitFor();
    created = await page.getByLabel('The new API key').inputValue();
    assert.match(created, /^flk_[A-Za-z0-9_-]{43}$/);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied. Paste it where it is needed now.').waitFor();
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), created);
    assertLayout('api-keys-created', await browser.screenshot('api-keys-created'));
    assert.equal((await forgelink.call({ ...alice, apiKey: created }, 'GET', '/api/v1/me')).status, 200);
  });

  test('revoke asks first; the key stops working at once', async () => {
    const { page } = browser;
    const row = page.locator('table.keys tbody tr').filter({ hasText: 'build server' });
    await row.getByText('Revoke…').click();
    await row.getByText(/is refused from its next request on/).waitFor();
    await row.getByRole('button', { name: 'Yes, revoke build server' }).click();
    await page.getByText(/Revoked key_[0-9a-f]{20}: anything still using it is refused from now on\./).waitFor();
    assert.equal(await page.locator('table.keys tbody tr').count(), 1);
    assert.equal((await forgelink.call({ ...alice, apiKey: created }, 'GET', '/api/v1/me')).status, 401);
    assertLayout('api-keys', await browser.screenshot('api-keys'));
  });

  test('the key appeared on one page only; no CSP refusal or script error', () => {
    const showing = browser.documents.filter((document) => document.body.includes(created));
    assert.equal(showing.length, 1);
    assert.equal(showing[0]?.status, 201);
    assert.deepEqual(browser.problems, []);
  });
});
