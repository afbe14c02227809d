import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { oauthRedirectUri } from '../../src/gitlab/index.ts';
import { hashPassword } from '../../src/server/web/index.ts';
import { bindingForSecret, createVault } from '../../src/vault/index.ts';
import { startFakeGitLab, type FakeGitLab } from '../../testing/fake-gitlab/index.ts';
import { startForgelink, TEST_PUBLIC_URL, type TestForgelink, type TestUser } from '../support/forgelink.ts';
import { newRun } from '../storage/run-records.ts';
import { csrfOf, webClient } from './client.ts';

const PASSWORD = 'a long dashboard password';

describe('dashboard pages without JavaScript (in-process, fake GitLab over HTTPS)', () => {
  let gitlab: FakeGitLab;
  let forgelink: TestForgelink;
  let alice: TestUser;
  let bob: TestUser;
  let aliceClient: ReturnType<typeof webClient>;
  let bobClient: ReturnType<typeof webClient>;
  let connectionId: string;
  let otherConnectionId: string;
  const tokens: string[] = [];

  async function signedIn(user: TestUser, on: TestForgelink = forgelink) {
    const client = webClient(on.app);
    await on.storage.users.setPasswordHash(user.id, await hashPassword(PASSWORD));
    const form = await client.get('/sign-in');
    const response = await client.post('/sign-in', { _csrf: csrfOf(form.text), username: user.name, password: PASSWORD, next: '/' });
    assert.equal(response.status, 303);
    return client;
  }

  async function connect(scopes: string[], label: string): Promise<string> {
    const token = gitlab.addToken(bot, { scopes, expiresAt: '2027-06-30' });
    tokens.push(token);
    const page = await aliceClient.get('/integrations/gitlab');
    const form = new FormData();
    form.set('_csrf', csrfOf(page.text));
    form.set('baseUrl', gitlab.baseUrl);
    form.set('token', token);
    form.set('caPem', gitlab.caPem ?? '');
    form.set('label', label);
    const response = await aliceClient.post('/integrations/gitlab/connections', form);
    assert.equal(response.status, 303, response.text);
    return new URL(response.location as string, 'http://localhost').searchParams.get('connection') as string;
  }

  let bot: number;
  before(async () => {
    gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
    bot = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' }).id;
    gitlab.addProject({ path: 'acme/api', members: [{ userId: bot, accessLevel: 30 }] });
    gitlab.addProject({ path: 'acme/web', members: [{ userId: bot, accessLevel: 30 }] });
    // Connect Account is set up for the fake GitLab only: gitlab.com stands for an instance without an application.
    const oauthApp = gitlab.addOAuthApplication({ name: 'forgelink', redirectUri: oauthRedirectUri(TEST_PUBLIC_URL), scopes: ['api', 'read_user'] });
    forgelink = await startForgelink({
      oauth: { apps: [{ baseUrl: gitlab.baseUrl, clientId: oauthApp.clientId, clientSecret: oauthApp.clientSecret, caPem: gitlab.caPem }] },
    });
    alice = await forgelink.addUser('alice');
    bob = await forgelink.addUser('bob');
    aliceClient = await signedIn(alice);
    bobClient = await signedIn(bob);
    connectionId = await connect(['api', 'read_user'], 'api bot');
    otherConnectionId = await connect(['read_repository', 'write_repository'], 'push-only bot');
  });
  after(async () => {
    await forgelink.close();
    await gitlab.close();
  });

  test('the integrations page lists both connections with what a reviewer asks about, and no token', async () => {
    const page = await aliceClient.get(`/integrations/gitlab?notice=connected&connection=${otherConnectionId}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /Connected push-only bot: actions will be attributed to unknown\./);
    assert.match(page.text, /<h3 id="[^"]+">api bot<\/h3>/);
    assert.match(page.text, /cannot_read_user/);
    assert.match(page.text, /2027-06-30 \(in \d+ days\)/);
    assert.match(page.text, /No OAuth application is configured for gitlab.com — ask the operator/);
    for (const token of tokens) assert.ok(!page.text.includes(token));
  });

  test('Connect Account without an OAuth application for the instance says so', async () => {
    const page = await aliceClient.get('/integrations/gitlab/connect?baseUrl=https%3A%2F%2Fgitlab.com');
    assert.equal(page.status, 400);
    assert.match(page.text, /Connect Account cannot start/);
    assert.match(page.text, /no OAuth application for https:\/\/gitlab\.com/);
  });

  test('Connect Account on a forgelink without any OAuth application says it is not set up', async () => {
    const bare = await startForgelink();
    try {
      const client = await signedIn(await bare.addUser('carol'), bare);
      const page = await client.get('/integrations/gitlab/connect?baseUrl=https%3A%2F%2Fgitlab.com');
      assert.equal(page.status, 404);
      assert.match(page.text, /Connect Account is not set up/);
      assert.match(page.text, /FORGELINK_GITLAB_OAUTH_APPS/);
    } finally {
      await bare.close();
    }
  });

  test('a forged OAuth callback gets a page that says what happened', async () => {
    const page = await aliceClient.get('/integrations/gitlab/callback?code=abc&state=forged');
    assert.equal(page.status, 400);
    assert.match(page.text, /This authorization cannot be finished/);
    assert.match(page.text, /Nothing was connected/);
    const denied = await aliceClient.get('/integrations/gitlab/callback?error=access_denied&state=forged');
    assert.equal(denied.status, 400);
  });

  test("another user's connection and run are 404 pages, never 403", async () => {
    const page = await bobClient.get('/integrations/gitlab');
    const token = csrfOf(page.text);
    for (const action of ['check', 'disconnect']) {
      const response = await bobClient.post(`/integrations/gitlab/connections/${connectionId}/${action}`, { _csrf: token });
      assert.equal(response.status, 404, action);
      assert.match(response.text, /No connection/);
    }
    const projects = await bobClient.get(`/integrations/gitlab/connections/${connectionId}/projects`, { accept: 'application/json' });
    assert.equal(projects.status, 404);
    const run = newRun(alice.id, { connectionId });
    await forgelink.storage.runs.createRun(run);
    assert.equal((await bobClient.get(`/runs/${run.id}`)).status, 404);
    assert.equal((await bobClient.get(`/runs/${run.id}/log`, { accept: 'application/json' })).status, 404);
    assert.equal((await aliceClient.get(`/runs/${run.id}`)).status, 200);
    assert.equal((await aliceClient.get(`/integrations/gitlab/connections/${connectionId}/projects`, { accept: 'application/json' })).status, 200);
  });

  test('the runs page lists the chosen connection\'s projects; "Load projects" switches connection without JavaScript', async () => {
    const page = await aliceClient.get('/runs');
    assert.match(page.text, /<select id="project" name="project"[^>]*>\s*<option>acme\/api<\/option>\s*<option>acme\/web<\/option>/);
    const loaded = await aliceClient.post('/runs', {
      _csrf: csrfOf(page.text),
      intent: 'load-projects',
      connectionId: otherConnectionId,
      project: 'acme/api',
      branch: 'dev',
      command: 'echo hi',
    });
    assert.equal(loaded.status, 200);
    assert.match(loaded.text, new RegExp(`<option value="${otherConnectionId}" selected>`));
    // A push-only token cannot list projects: the path is typed, and the page says why.
    assert.match(loaded.text, /<input id="project" name="project" type="text"/);
    assert.match(loaded.text, /read_api or api/);
    assert.match(loaded.text, /value="dev"/);
    assert.match(loaded.text, /value="echo hi"/);
  });

  test('a bad command comes back with the error next to the field and the input kept', async () => {
    const page = await aliceClient.get('/runs');
    const response = await aliceClient.post('/runs', {
      _csrf: csrfOf(page.text),
      intent: 'start',
      connectionId,
      project: 'acme/api',
      branch: '',
      command: 'claude -p fix | tee out',
    });
    assert.equal(response.status, 400);
    assert.match(response.text, /<p class="field-error" id="command-error">.*&quot;\|&quot; would be interpreted by a shell/);
    assert.match(response.text, /id="command"[^>]*value="claude -p fix \| tee out"[^>]*aria-describedby="command-hint command-error" aria-invalid="true" autofocus/);
    const unknown = await aliceClient.post('/runs', { _csrf: csrfOf(page.text), intent: 'start', connectionId: 'con_nope', project: 'acme/api', command: 'true' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.text, /id="connectionId-error"/);
  });

  test('a self-hosted instance whose CA is missing: the error sits at the CA field, in the dashboard\'s terms', async () => {
    const page = await aliceClient.get('/integrations/gitlab');
    const form = new FormData();
    form.set('_csrf', csrfOf(page.text));
    form.set('baseUrl', gitlab.baseUrl);
    form.set('token', gitlab.addToken(bot, { scopes: ['api'], expiresAt: '2027-06-30' }));
    form.set('caPem', '');
    form.set('label', 'no ca');
    const response = await aliceClient.post('/integrations/gitlab/connections', form);
    assert.equal(response.status, 400, response.text);
    assert.match(response.text, /<p class="field-error" id="caPem-error">(?:(?!<\/p>)[\s\S])*CA certificate/);
    assert.doesNotMatch(response.text, /id="baseUrl-error"/);
    assert.doesNotMatch(response.text, /--ca-file/);
    assert.match(response.text, /<textarea id="caPem"[^>]* autofocus>/);
  });

  test('the live log needs the session: an event stream without it is 401, not a redirect', async () => {
    const response = await webClient(forgelink.app).get('/runs/run_x/log', { accept: 'text/event-stream' });
    assert.equal(response.status, 401);
    assert.equal(JSON.parse(response.text).error.code, 'unauthenticated');
  });

  test('a finished run shows its outputs as links to GitLab, and only http(s) links', async () => {
    const run = newRun(alice.id, {
      connectionId,
      status: 'succeeded',
      projectPath: 'acme/api',
      projectWebUrl: `${gitlab.baseUrl}/acme/api`,
      outputs: {
        branches: [{ name: 'agent/x', sha: 'a'.repeat(40), created: true, webUrl: `${gitlab.baseUrl}/acme/api/-/tree/agent/x` }],
        mergeRequests: [{ iid: 4, title: '<b>Fix</b>', sourceBranch: 'agent/x', targetBranch: 'main', webUrl: 'javascript:alert(1)', detectedBy: 'push' }],
        issues: [{ iid: 9, title: 'Follow-up', webUrl: `${gitlab.baseUrl}/acme/api/-/issues/9` }],
      },
    });
    await forgelink.storage.runs.createRun(run);
    const page = await aliceClient.get(`/runs/${run.id}`);
    assert.match(page.text, new RegExp(`<a href="${gitlab.baseUrl}/acme/api/-/issues/9" rel="noopener noreferrer">#9 Follow-up</a>`));
    assert.match(page.text, /!4 &lt;b&gt;Fix&lt;\/b&gt;/);
    assert.doesNotMatch(page.text, /javascript:/);
    assert.doesNotMatch(page.text, /data-live-log/);
    assert.doesNotMatch(page.text, /Cancel run/);
  });

  test('the run page\'s Policy section: what the broker refused, by rule, and the options the run was started with', async () => {
    const run = newRun(alice.id, {
      connectionId,
      status: 'succeeded',
      projectPath: 'acme/api',
      credentials: 'brokered',
      policy: {
        refused: [{ at: '2026-12-01T10:00:00.000Z', method: 'POST', target: '127.0.0.1:1/gitlab/api/v4/user/personal_access_tokens', rule: 'api.user', message: 'forgelink policy (api.user): <script>x</script>' }],
        options: { allowTags: true, allowMerge: false, readOtherProjects: false },
      },
    });
    await forgelink.storage.runs.createRun(run);
    const page = await aliceClient.get(`/runs/${run.id}`);
    const policy = /<h2 id="policy-title">Policy<\/h2>([\s\S]*?)<\/section>/.exec(page.text)?.[1] ?? '';
    assert.match(policy, /Credentials brokered/);
    assert.match(policy, /<strong>api\.user<\/strong> <code>POST 127\.0\.0\.1:1\/gitlab\/api\/v4\/user\/personal_access_tokens<\/code>/);
    // The rule is named once, in bold; the reason follows without the message's own "forgelink policy (api.user):".
    assert.match(policy, /<br>&lt;script&gt;x&lt;\/script&gt;<\/li>/);
    assert.doesNotMatch(policy, /forgelink policy/);
    assert.match(policy, /pushing tags <strong>allowed<\/strong>, merging merge requests refused, reading other projects refused\./);

    const direct = newRun(alice.id, { connectionId, status: 'succeeded', projectPath: 'acme/api', credentials: 'direct' });
    await forgelink.storage.runs.createRun(direct);
    const directPage = await aliceClient.get(`/runs/${direct.id}`);
    assert.match(directPage.text, /Credentials direct: the sandbox held the real token, and no run policy applied\./);
    assert.doesNotMatch(directPage.text, /Fixed when the run started/);
  });

  test('a canceled run says "The run was canceled." and a reload drops the "Canceling" notice', async () => {
    const run = newRun(alice.id, { connectionId, status: 'canceled', projectPath: 'acme/api', error: { code: 'canceled', message: 'The run was canceled.' } });
    await forgelink.storage.runs.createRun(run);
    // The URL the Cancel button leads to, reloaded after the run has stopped.
    const page = await aliceClient.get(`/runs/${run.id}?notice=canceling`);
    assert.equal(page.status, 200);
    assert.match(page.text, /The run was canceled\./);
    assert.doesNotMatch(page.text, /Canceling: the agent is being stopped/);
    // The user asked for it: a neutral notice, not an error banner.
    assert.match(page.text, /<div class="notice notice-info" role="status">The run was canceled\.<\/div>/);
    assert.doesNotMatch(page.text, /notice-error|role="alert"/);

    // Still being stopped: the "Canceling" notice shows.
    const stopping = newRun(alice.id, { connectionId, status: 'running', projectPath: 'acme/api', startedAt: new Date().toISOString() });
    await forgelink.storage.runs.createRun(stopping);
    const live = await aliceClient.get(`/runs/${stopping.id}?notice=canceling`);
    assert.match(live.text, /<div class="notice notice-info" role="status">Canceling: the agent is being stopped\.<\/div>/);
  });

  test('the Network row of a live run says it is recorded when the run ends, not "no host reached"', async () => {
    const live = newRun(alice.id, { connectionId, status: 'running', projectPath: 'acme/api', startedAt: new Date().toISOString() });
    await forgelink.storage.runs.createRun(live);
    const livePage = await aliceClient.get(`/runs/${live.id}`);
    assert.match(livePage.text, /<dt>Network<\/dt><dd><span class="muted">recorded when the run ends<\/span><\/dd>/);
    assert.doesNotMatch(livePage.text, /no host reached/);

    const ended = newRun(alice.id, { connectionId, status: 'succeeded', projectPath: 'acme/api', egress: { allowed: ['gitlab.example:443'], refused: ['evil.example:443'] } });
    await forgelink.storage.runs.createRun(ended);
    const endedPage = await aliceClient.get(`/runs/${ended.id}`);
    assert.match(endedPage.text, /<dt>Network<\/dt><dd>reached gitlab\.example:443; <strong>refused evil\.example:443<\/strong><\/dd>/);
  });

  test('each connection card shows its id (for the CLI) and names its host once', async () => {
    const page = await aliceClient.get('/integrations/gitlab');
    for (const id of [connectionId, otherConnectionId]) {
      const card = page.text.slice(page.text.indexOf(`id="${id}"`), page.text.indexOf('</article>', page.text.indexOf(`id="${id}"`)));
      assert.match(card, new RegExp(`<dt>ID</dt><dd><code class="connection-id" title="[^"]+">${id}</code></dd>`));
      const hostRow = /<dt>Host<\/dt><dd>(.*?)<\/dd>/.exec(card)?.[1] ?? '';
      assert.equal(hostRow.split(new URL(gitlab.baseUrl).host).length - 1, 1, hostRow);
      assert.ok(hostRow.startsWith(gitlab.baseUrl), hostRow);
    }
  });

  test('a second connection of the same account is marked on both cards, as the CLI warns', async () => {
    const again = await connect(['read_api', 'read_user'], 'api bot again');
    try {
      const page = await aliceClient.get('/integrations/gitlab');
      const cardOf = (id: string) => page.text.slice(page.text.indexOf(`id="${id}"`), page.text.indexOf('</article>', page.text.indexOf(`id="${id}"`)));
      const on = `@agent-bot \\(Agent Bot\\) on ${gitlab.baseUrl.replaceAll('.', '\\.')} is also connected as`;
      assert.match(cardOf(again), new RegExp(`<strong>duplicate</strong>: ${on} <a href="#${connectionId}"><code>${connectionId}</code></a> \\(api bot\\)`));
      assert.match(cardOf(connectionId), new RegExp(`<strong>duplicate</strong>: ${on} <a href="#${again}"><code>${again}</code></a> \\(api bot again\\)`));
      // The push-only connection cannot read its account: nothing to compare, so it is not marked.
      assert.doesNotMatch(cardOf(otherConnectionId), /duplicate/);
    } finally {
      const page = await aliceClient.get('/integrations/gitlab');
      const gone = await aliceClient.post(`/integrations/gitlab/connections/${again}/disconnect`, { _csrf: csrfOf(page.text) });
      assert.equal(gone.status, 303, gone.text);
    }
  });

  test('a finished run says how long it took beside Finished; a live one does not', async () => {
    const cases = [
      { ms: 400, text: '0.4 s' },
      { ms: 4_200, text: '4 s' },
      { ms: 185_000, text: '3 min 5 s' },
      { ms: 7_800_000, text: '2 h 10 min' },
    ];
    for (const { ms, text } of cases) {
      const run = newRun(alice.id, { connectionId, status: 'succeeded', projectPath: 'acme/api', startedAt: '2026-12-04T19:26:00.000Z', finishedAt: new Date(Date.parse('2026-12-04T19:26:00.000Z') + ms).toISOString() });
      await forgelink.storage.runs.createRun(run);
      const page = await aliceClient.get(`/runs/${run.id}`);
      assert.match(page.text, new RegExp(`<dt>Finished</dt><dd>\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC <span class="muted">\\(took ${text}\\)</span></dd>`), text);
    }
    const live = newRun(alice.id, { connectionId, status: 'running', projectPath: 'acme/api', startedAt: new Date().toISOString() });
    await forgelink.storage.runs.createRun(live);
    assert.doesNotMatch((await aliceClient.get(`/runs/${live.id}`)).text, /took/);
  });

  test('a connection whose sealed token cannot be opened: Check now shows it invalid on its card, saying which key to restore', async () => {
    const id = await connect(['api'], 'moved bot');
    const secret = await forgelink.storage.connections.getSecret(alice.id, id, 'token');
    assert.ok(secret);
    const foreign = createVault({ keyring: { versions: [{ id: 'k9', key: randomBytes(32) }] } });
    await forgelink.storage.connections.withConnectionLock(alice.id, id, (locked) =>
      locked.update({ secrets: [{ id: secret.id, sealed: foreign.seal('glpat-elsewhere', bindingForSecret(secret)) }] }),
    );
    const page = await aliceClient.get('/integrations/gitlab');
    const checked = await aliceClient.post(`/integrations/gitlab/connections/${id}/check`, { _csrf: csrfOf(page.text) });
    assert.equal(checked.status, 303, checked.text);
    const shown = await aliceClient.get(checked.location as string);
    assert.match(shown.text, /Checked moved bot with GitLab just now: invalid\./);
    const card = shown.text.slice(shown.text.indexOf(`id="${id}"`));
    assert.match(card, /<span class="badge status-invalid">invalid<\/span>/);
    assert.match(card, /<p class="status-reason">forgelink cannot open this connection&#39;s stored token: it was sealed with master key &quot;k9&quot;[^<]*or reconnect the account\.<\/p>/);
  });
});
