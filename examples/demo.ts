/**
 * `npm run demo`: forgelink end to end on a machine with no GitLab. Starts the fake GitLab (HTTPS with
 * its own CA), starts `forgelink serve` on a fresh data dir, creates a user, connects two tokens (an api
 * token, and a push-only one), runs the scripted example agent in a sandbox with each, then the real Claude
 * Code CLI (`@anthropic-ai/claude-code`, installed by testing/agents/install.ts) through the `claude-code` profile against a scripted
 * stand-in for Anthropic's API, and prints what the agents produced. Every step is the CLI a user would type.
 */
import { spawn } from 'node:child_process';
import { access, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gitLabWorkScript, startFakeAnthropic } from '../testing/fake-anthropic/index.ts';
import { startFakeGitLab } from '../testing/fake-gitlab/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const main = path.join(root, 'bin/forgelink.js');
const agentsDir = path.join(root, 'examples/agents');
const claudePackage = path.join(root, 'node_modules/.forgelink-agents/node_modules/@anthropic-ai/claude-code');
/** A made-up key: the stand-in checks that Claude Code sends it, forgelink that it never shows. */
const DEMO_ANTHROPIC_KEY = 'sk-ant-demo-0000000000000000';

/** Bold headings on a terminal; plain text into a pipe or a file, or with NO_COLOR set. */
const bold = process.stdout.isTTY === true && (process.env.NO_COLOR ?? '') === '';

function say(text: string): void {
  process.stdout.write(bold ? `\n\x1b[1m== ${text}\x1b[0m\n` : `\n== ${text}\n`);
}

function forgelink(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<{ code: number | null; stdout: string }> {
  process.stdout.write(`$ forgelink ${args.map((arg) => (/\s/.test(arg) ? `'${arg}'` : arg)).join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
    child.stdin.end(stdin);
  });
}

async function mustSucceed(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<string> {
  const result = await forgelink(args, env, stdin);
  if (result.code !== 0) throw new Error(`forgelink ${args[0]} failed (exit ${result.code})`);
  return result.stdout;
}

async function demo(): Promise<void> {
  const home = await mkdtemp(path.join(tmpdir(), 'forgelink-demo-'));
  const gitlab = await startFakeGitLab({ tls: true, basePath: '/gitlab' });
  const anthropic = await startFakeAnthropic({ apiKey: DEMO_ANTHROPIC_KEY, script: gitLabWorkScript() });
  const claude = await access(path.join(claudePackage, 'bin/claude.exe')).then(
    async () => realpath(claudePackage),
    () => null,
  );
  let server: ReturnType<typeof spawn> | null = null;
  try {
    say(`Fake GitLab at ${gitlab.baseUrl} (private CA)`);
    const bot = gitlab.addUser({ username: 'agent-bot', name: 'Agent Bot' });
    gitlab.addProject({ path: 'acme/platform/api', members: [{ userId: bot.id, accessLevel: 30 }] });
    const apiToken = gitlab.addToken(bot.id, { scopes: ['api', 'read_user'], expiresAt: '2027-05-31', name: 'forgelink-demo' });
    const pushToken = gitlab.addToken(bot.id, { scopes: ['read_repository', 'write_repository'], expiresAt: '2027-05-31' });
    process.stdout.write('user @agent-bot (Developer on acme/platform/api), two tokens: api+read_user, and write_repository only\n');

    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      FORGELINK_DATA_DIR: path.join(home, 'data'),
      // The fake GitLab listens on loopback, which forgelink refuses unless the operator allows it.
      FORGELINK_OUTBOUND_ALLOW: '127.0.0.0/8',
      FORGELINK_SANDBOX_MOUNTS: claude === null ? agentsDir : `${agentsDir},${claude}`,
      FORGELINK_LOG_LEVEL: 'warn',
      // The claude-code profile runs the npm package's binary and talks to the stand-in as its gateway, whose
      // origin then joins the run's allowlist.
      FORGELINK_AGENTS: JSON.stringify({
        'claude-code': {
          command: [`${claude}/bin/claude.exe`, '-p', '{task}', '--output-format', 'stream-json', '--verbose', '--permission-mode', 'bypassPermissions'],
          env: { ANTHROPIC_BASE_URL: anthropic.baseUrl },
        },
      }),
    };

    say('Create a user and start the server');
    const user = JSON.parse(await mustSucceed(['admin', 'user', 'add', 'alice', '--json'], env)) as { apiKey: string };
    const listening = spawn(process.execPath, [main, 'serve'], {
      env: { ...env, FORGELINK_LISTEN: '127.0.0.1:0', FORGELINK_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    server = listening;
    const url = await new Promise<string>((resolve, reject) => {
      let seen = '';
      listening.stdout?.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /forgelink is ready: (http:\/\/[^"\s]+)/.exec(seen);
        if (match) resolve(match[1] as string);
      });
      listening.on('exit', (code) => reject(new Error(`forgelink serve exited with ${code}`)));
    });
    process.stdout.write(`forgelink serving at ${url}\n`);
    await mustSucceed(['login', '--server', url], env, user.apiKey);

    say('Connect GitLab with the api token (read from stdin, never an argument)');
    const api = JSON.parse(
      await mustSucceed(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string, '--label', 'api bot', '--token-stdin', '--json'], env, apiToken),
    ) as { id: string };
    process.stdout.write(await mustSucceed(['connections', 'show', api.id], env));

    say('Connect the push-only token too');
    const push = JSON.parse(
      await mustSucceed(['connect', 'gitlab', '--url', gitlab.baseUrl, '--ca-file', gitlab.caFile as string, '--label', 'push-only bot', '--token-stdin', '--json'], env, pushToken),
    ) as { id: string };
    process.stdout.write(await mustSucceed(['connections', 'list'], env));

    say('Projects the api connection may work on');
    process.stdout.write(await mustSucceed(['projects', api.id], env));

    for (const [connection, what] of [
      [api.id, 'the api token: merge request and issue through the API'],
      [push.id, 'the push-only token: merge request through git push options'],
    ] as const) {
      say(`Run the scripted agent with ${what}`);
      process.stdout.write(
        await mustSucceed(['run', '--connection', connection, '--project', 'acme/platform/api', '--', 'python3', path.join(agentsDir, 'scripted-agent.py')], env),
      );
    }

    if (claude === null) {
      say('Claude Code is not installed (npm install adds @anthropic-ai/claude-code under node_modules/.forgelink-agents): skipping its run');
    } else {
      say(`Run the real Claude Code through the claude-code profile (its model: a scripted stand-in at ${anthropic.baseUrl})`);
      process.stdout.write(await mustSucceed(['agents', 'list'], env));
      await mustSucceed(['secrets', 'set', 'ANTHROPIC_API_KEY'], env, `${DEMO_ANTHROPIC_KEY}\n`);
      process.stdout.write(
        await mustSucceed(['run', '--agent', 'claude-code', '--connection', api.id, '--project', 'acme/platform/api', 'Fix the README and open a merge request'], env),
      );
    }

    say('Runs so far');
    process.stdout.write(await mustSucceed(['runs', 'list'], env));
  } finally {
    server?.kill('SIGTERM');
    await new Promise((resolve) => (server && server.exitCode === null ? server.once('exit', resolve) : resolve(null)));
    await gitlab.close();
    await anthropic.close();
    await rm(home, { recursive: true, force: true });
  }
}

await demo();
