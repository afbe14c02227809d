import assert from 'node:assert/strict';
import { serve, type ServerType } from '@hono/node-server';
import { after, before, describe, test } from 'node:test';
import path from 'node:path';
import { hashPassword } from '../../src/server/web/index.ts';
import { oauthRedirectUri } from '../../src/gitlab/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { EXAMPLES_DIR, startForgelink, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { assertLayout, launchBrowser, type TestBrowser } from './browser.ts';

const PASSWORD = 'a long dashboard password';
/** Long, and with a word too long for a phone's width: cards, selects and headings must wrap it. */
const LABEL = 'corp bot · acme-platform-nightly-dependency-upgrades-and-security-fixes-agent';
/** One log line longer than any screen, without a space to break at. */
const LONG_LINE = `artifact=${'0123456789abcdef'.repeat(16)}`;



/** Listens before forgelink exists, so the OAuth redirect URI can name the real port. */
async function listen(handler: { fetch: (request: Request, env: unknown) => Response | Promise<Response> }): Promise<{ url: string; server: ServerType }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: (request, env) => handler.fetch(request, env), hostname: '127.0.0.1', port: 0 }, (info) => {
      resolve({ url: `http://127.0.0.1:${info.port}`, server });
    });
  });
}

describe('the dashboard in real Chromium, against the fake GitLab', () => {
  let selfHosted: FakeGitLab;
  let gitlabCom: FakeGitLab;
  let forgelink: TestForgelink;
  let browser: TestBrowser;
  let server: ServerType;
  let base: string;
  let alice: TestUser;
  let selfHostedBot: number;
  const tokens: string[] = [];
  const target: { fetch: (request: Request, env: unknown) => Response | Promise<Response> } = {
    fetch: () => new Response('starting', { status: 503 }),
  };

  before(async () => {
    selfHosted = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    selfHostedBot = selfHosted.addUser({ username: 'corp-bot', name: 'Corp Bot' }).id;
    selfHosted.addProject({ path: 'acme/platform/api', members: [{ userId: selfHostedBot, accessLevel: 30 }] });
    selfHosted.addProject({ path: 'acme/web', members: [{ userId: selfHostedBot, accessLevel: 30 }] });

    // The OAuth instance is plain http on loopback, so the browser needs no test CA to visit its authorize page.
    gitlabCom = await startFakeGitLab();
    const oauthBot = gitlabCom.addUser({ username: 'oauth-bot', name: 'OAuth Bot' }).id;
    gitlabCom.addProject({ path: 'team/service', members: [{ userId: oauthBot, accessLevel: 30 }] });
    gitlabCom.oauthAutoApprove(oauthBot);

    const listening = await listen(target);
    server = listening.server;
    base = listening.url;
    const app = gitlabCom.addOAuthApplication({ name: 'forgelink', redirectUri: oauthRedirectUri(base), scopes: ['api', 'read_user'] });
    forgelink = await startForgelink({
      oauth: { apps: [{ baseUrl: gitlabCom.baseUrl, clientId: app.clientId, clientSecret: app.clientSecret, caPem: null }], publicUrl: base },
    });
    target.fetch = (request, env) => forgelink.app.fetch(request, env);
    alice = await forgelink.addUser('alice');
    await forgelink.storage.users.setPasswordHash(alice.id, await hashPassword(PASSWORD));
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await forgelink?.close();
    await selfHosted?.close();
    await gitlabCom?.close();
  });

  function token(scopes: string[]): string {
    const value = selfHosted.addToken(selfHostedBot, { scopes, expiresAt: '2027-06-30' });
    tokens.push(value);
    return value;
  }

  test('sign in, then land on the page asked for', async () => {
    const { page } = browser;
    await page.goto(`${base}/integrations/gitlab`);
    assert.equal(new URL(page.url()).pathname, '/sign-in');
    await page.getByRole('heading', { name: 'Sign in to forgelink' }).waitFor();
    assertLayout('sign-in', await browser.screenshot('sign-in'));
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password or API key').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('The user name, password or API key is not right.').waitFor();
    await page.getByLabel('Password or API key').fill(PASSWORD);
    // Keyboard only: Enter submits the form.
    await page.getByLabel('Password or API key').press('Enter');
    await page.getByRole('heading', { name: 'Integrations → GitLab' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/integrations/gitlab');
  });

  test('Connect Account goes to GitLab (PKCE S256) and back with an OAuth connection', async () => {
    const { page } = browser;
    const authorize = page.waitForRequest((request) => request.url().startsWith(`${gitlabCom.baseUrl}/oauth/authorize`));
    await page.getByRole('link', { name: /Connect Account/ }).click();
    const sent = new URL((await authorize).url());
    assert.equal(sent.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(sent.searchParams.get('redirect_uri'), `${base}/integrations/gitlab/callback`);
    await page.getByText(/Connected .*: actions will be attributed to @oauth-bot \(OAuth Bot\)\./).waitFor();
    assert.equal(new URL(page.url()).pathname, '/integrations/gitlab');
    const card = page.locator('article.connection').filter({ hasText: '@oauth-bot' });
    await card.getByText('OAuth', { exact: true }).waitFor();
    assert.match(await card.innerText(), /api\s+read_user/);
    assert.match(await card.innerText(), /active/);
  });

  test('the self-hosted form keeps the input and puts the error next to the field', async () => {
    const { page } = browser;
    const wrong = 'glpat-notarealtoken0000000';
    tokens.push(wrong);
    await page.getByLabel('Instance URL').fill(selfHosted.baseUrl);
    await page.getByLabel('Personal access token').fill(wrong);
    await page.getByLabel('Paste PEM').fill(selfHosted.caPem ?? '');
    await page.getByLabel(/^Label/).fill('corp bot');
    const response = page.waitForResponse((r) => r.url() === `${base}/integrations/gitlab/connections`);
    await page.getByRole('button', { name: 'Connect instance' }).click();
    assert.equal((await response).status(), 400);
    const error = page.locator('#token-error');
    await error.waitFor();
    assert.match(await error.innerText(), /does not recognise this token/);
    assert.equal(await page.getByLabel('Personal access token').getAttribute('aria-describedby'), 'token-hint token-error');
    assert.equal(await page.getByLabel('Personal access token').inputValue(), '');
    assert.equal(await page.getByLabel('Instance URL').inputValue(), selfHosted.baseUrl);
    assert.equal((await page.getByLabel('Paste PEM').inputValue()).trim(), (selfHosted.caPem ?? '').trim());
    assert.equal(await page.getByLabel(/^Label/).inputValue(), 'corp bot');
    await page.locator('#self-hosted-form').scrollIntoViewIfNeeded();
    assertLayout('self-hosted-field-error', await browser.screenshot('self-hosted-field-error'));

    await page.getByLabel('Instance URL').fill('ftp://gitlab.example.com');
    await page.getByLabel('Personal access token').fill(wrong);
    await page.getByRole('button', { name: 'Connect instance' }).click();
    await page.locator('#baseUrl-error').getByText(/must use https/).waitFor();
  });

  test('the token link follows the typed instance and carries the recommended scopes', async () => {
    const { page } = browser;
    await page.getByLabel('Instance URL').fill('gitlab.corp.example/gitlab/api/v4/');
    const href = await page.getByRole('link', { name: 'Create a token with read_repository + write_repository' }).getAttribute('href');
    assert.equal(href, 'https://gitlab.corp.example/gitlab/-/user_settings/personal_access_tokens?name=forgelink+agent&scopes=read_repository,write_repository');
  });

  test('connect a self-hosted instance with a token and a private CA file; two connections at once', async () => {
    const { page } = browser;
    await page.getByLabel('Instance URL').fill(`${selfHosted.baseUrl}/`);
    await page.getByLabel('Personal access token').fill(token(['api', 'read_user']));
    await page.getByLabel('Paste PEM').fill('');
    await page.getByLabel('or choose a file').setInputFiles(selfHosted.caFile as string);
    await page.getByLabel(/^Label/).fill(LABEL);
    await page.getByRole('button', { name: 'Connect instance' }).click();
    await page.getByText(`Connected ${LABEL}: actions will be attributed to @corp-bot (Corp Bot).`).waitFor();
    const cards = page.locator('article.connection');
    assert.equal(await cards.count(), 2);
    const corp = cards.filter({ hasText: 'corp bot' });
    const text = await corp.innerText();
    assert.match(text, new RegExp(new URL(selfHosted.baseUrl).host.replace('.', '\\.')));
    assert.match(text, /private CA/);
    assert.match(text, /2027-06-30 \(in \d+ days\)/);
    assert.match(text, /broad_scope/);
    await page.evaluate('window.scrollTo(0, 0)');
    assertLayout('integrations-two-connections', await browser.screenshot('integrations-two-connections'));
  });

  test('Check now re-validates a connection', async () => {
    const { page } = browser;
    await page.locator('article.connection').filter({ hasText: 'corp bot' }).getByRole('button', { name: 'Check now' }).click();
    await page.getByText(`Checked ${LABEL} with GitLab just now: active.`).waitFor();
  });

  test('Doctor walks the self-hosted connection step by step', async () => {
    const { page } = browser;
    await page.locator('article.connection').filter({ hasText: 'corp bot' }).getByRole('button', { name: 'Doctor' }).click();
    await page.getByRole('heading', { name: `Doctor: ${LABEL}` }).waitFor();
    await page.getByText('no problem found.').waitFor();
    for (const step of ['dns', 'tls', 'gitlab', 'subpath', 'token', 'clone_url', 'clock']) {
      assert.equal(await page.locator(`tr[data-step="${step}"] .badge`).innerText(), 'ok', step);
    }
    assertLayout('doctor', await browser.screenshot('doctor'));
    await page.getByRole('link', { name: 'Integrations → GitLab' }).first().click();
  });

  test('start a run: pick the connection and project, watch the log, see the merge request link', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Runs', exact: true }).click();
    await page.getByRole('heading', { name: 'Start a run' }).waitFor();
    const connections = page.getByLabel('Connection');
    const value = await connections.locator('option', { hasText: 'corp bot' }).getAttribute('value');
    await connections.selectOption(value as string);
    // app.js refills the project list for the chosen connection.
    await page.locator('select#project option', { hasText: 'acme/platform/api' }).waitFor({ state: 'attached' });
    await page.getByLabel('Project').selectOption('acme/platform/api');
    await page.getByLabel('Agent command').fill(`sh -c 'echo ${LONG_LINE} && exec python3 ${path.join(EXAMPLES_DIR, 'scripted-agent.py')}'`);
    assertLayout('runs-start-form', await browser.screenshot('runs-start-form'));
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/\/runs\/run_[0-9a-f]+$/);
    const mergeRequest = page.locator('.outputs a[href*="/-/merge_requests/"]');
    await mergeRequest.waitFor({ timeout: 120_000 });
    const href = (await mergeRequest.getAttribute('href')) as string;
    assert.ok(href.startsWith(`${selfHosted.baseUrl}/acme/platform/api/-/merge_requests/`), href);
    assert.match(await page.locator('.badge').first().innerText(), /succeeded/);
    assert.match(await page.locator('#log').innerText(), /Opened merge request/);
    assert.equal(await page.locator('.outputs a[href*="/-/issues/"]').count(), 1);
    assert.equal(await page.locator('.outputs a[href*="/-/tree/agent/"]').count(), 1);
    assert.match(await page.locator('#log').innerText(), new RegExp(LONG_LINE));
    const layouts = await browser.screenshot('run-with-outputs');
    assertLayout('run-with-outputs', layouts);
    // The long line wraps inside the log rather than widening it.
    assert.deepEqual(layouts.phone.scrollers.filter((box) => box.element.startsWith('pre#log')), []);
    // The page first came while the run went on (with the live log), then again once it had ended.
    const served = browser.documents.filter((document) => document.url === page.url());
    assert.ok(served.length >= 2, `${served.length} loads of the run page`);
    assert.match(served[0]?.body ?? '', /data-live-log=/);
    assert.doesNotMatch(served.at(-1)?.body ?? '', /data-live-log=/);
  });

  test('watch a run live and cancel it', async () => {
    const { page } = browser;
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).click();
    const connections = page.getByLabel('Connection');
    await connections.selectOption((await connections.locator('option', { hasText: 'corp bot' }).getAttribute('value')) as string);
    await page.locator('select#project option', { hasText: 'acme/web' }).waitFor({ state: 'attached' });
    await page.getByLabel('Project').selectOption('acme/web');
    await page.getByLabel('Agent command').fill("sh -c 'echo agent is working; sleep 120'");
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/\/runs\/run_[0-9a-f]+$/);
    await page.locator('#log').getByText('agent is working').waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#log-status').innerText(), 'Following the log live…');
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.locator('.badge', { hasText: 'canceled' }).waitFor({ timeout: 60_000 });
    assert.equal(await page.getByRole('button', { name: 'Cancel run' }).count(), 0);
  });

  test('the dashboard sums it up', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.getByRole('heading', { name: 'Recent runs' }).waitFor();
    assert.equal(await page.locator('.tile .big').first().innerText(), '2');
    assert.equal(await page.locator('table.runs tbody tr').count(), 2);
    assertLayout('dashboard', await browser.screenshot('dashboard'));
  });

  test('disconnect asks first, then removes the OAuth connection and revokes it at GitLab', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Integrations → GitLab' }).click();
    const card = page.locator('article.connection').filter({ hasText: '@oauth-bot' });
    await card.getByText('Disconnect…').click();
    await card.getByText(/forgelink deletes its stored token and revokes it at GitLab/).waitFor();
    assertLayout('integrations-disconnect', await browser.screenshot('integrations-disconnect'));
    await card.getByRole('button', { name: /Yes, disconnect/ }).click();
    await page.getByText('Disconnected. forgelink deleted the token and GitLab revoked the authorization.').waitFor();
    assert.equal(await page.locator('article.connection').count(), 1);
    assert.equal(gitlabCom.oauthStats().revocations > 0, true);
  });

  test('a form whose CSRF token was tampered with gets 403', async () => {
    const { page } = browser;
    const card = page.locator('article.connection').filter({ hasText: 'corp bot' });
    // A string, as the DOM's types are not part of this project's TypeScript setup.
    await page.evaluate(`document.querySelector('form[action$="/check"] input[name="_csrf"]').value = 'tampered'`);
    const response = page.waitForResponse((r) => r.url().endsWith('/check'));
    await card.getByRole('button', { name: 'Check now' }).click();
    assert.equal((await response).status(), 403);
    await page.getByText(/did not come from a forgelink page/).waitFor();
  });

  test('an expired session sends the browser to sign-in and back to the page it wanted', async () => {
    const { page } = browser;
    await forgelink.storage.db.updateTable('sessions').set({ expires_at: '2020-01-01T00:00:00.000Z' }).execute();
    await page.goto(`${base}/runs`);
    await page.getByText('Your session has ended. Sign in again to continue.').waitFor();
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password or API key').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Runs', exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/runs');
    assert.equal(await page.locator('table.runs tbody tr').count(), 2);
    assertLayout('runs', await browser.screenshot('runs'));
  });

  test('no token in any page; no CSP refusal or script error', async () => {
    const oauthSecrets = gitlabCom.oauthTokens().flatMap((pair) => [pair.token, pair.refreshToken]);
    const secrets = [...tokens, ...oauthSecrets, alice.apiKey];
    assert.ok(browser.documents.length >= 10, `only ${browser.documents.length} pages seen`);
    assert.ok(oauthSecrets.length > 0);
    for (const document of browser.documents) {
      for (const secret of secrets) assert.ok(!document.body.includes(secret), `a token appears in ${document.url}`);
    }
    assert.deepEqual(browser.problems.filter((problem) => !/status of 40[0-9]/.test(problem)), []);
  });
});
