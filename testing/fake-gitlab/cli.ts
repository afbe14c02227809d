import { Command, InvalidArgumentError } from 'commander';
import { startFakeGitLab, type FakeGitLab } from './index.ts';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('must be 0-65535');
  return port;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseLifetime(value: string): number {
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds < 1) throw new InvalidArgumentError('must be a whole number of seconds >= 1');
  return seconds;
}

/** The scopes of the demo OAuth application: what forgelink asks for. */
const DEMO_OAUTH_SCOPES = ['api', 'read_user', 'read_repository', 'write_repository'];

/** A demo user with a developer token and a handful of projects, enough to click through. */
function seed(gl: FakeGitLab): string {
  const demo = gl.addUser({ username: 'demo', name: 'Demo Developer' });
  const other = gl.addUser({ username: 'maintainer', name: 'Team Maintainer' });
  const expiresAt = new Date(Date.now() + 90 * 86_400_000).toISOString().slice(0, 10);
  const token = gl.addToken(demo.id, { scopes: ['api', 'read_user'], expiresAt, name: 'demo' });
  gl.addProject({
    path: 'acme/platform/api',
    description: 'The API service',
    members: [{ userId: demo.id, accessLevel: 30 }, { userId: other.id, accessLevel: 50 }],
  });
  gl.addProject({ path: 'acme/platform/web', members: [{ userId: demo.id, accessLevel: 40 }] });
  gl.addProject({ path: 'acme/docs', visibility: 'internal', members: [{ userId: demo.id, accessLevel: 20 }] });
  gl.addProject({ path: 'acme/legacy', archived: true, members: [{ userId: demo.id, accessLevel: 30 }] });
  gl.addProject({ path: 'demo/playground', members: [{ userId: demo.id, accessLevel: 50 }] });
  return token;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('fake-gitlab')
    .description('Runs the fake GitLab used by forgelink tests, seeded with a demo user, token and projects.')
    .option('--tls', 'serve HTTPS with a freshly generated test CA', false)
    .option('--base-path <path>', 'install under a subpath, e.g. /gitlab', '')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', parsePort, 0)
    .option('--json', 'print one JSON line {baseUrl, token, caFile, oauth} instead of text', false)
    .option(
      '--oauth-redirect <uri>',
      `register a demo OAuth application (${DEMO_OAUTH_SCOPES.join(', ')}) with this redirect URI; repeatable`,
      collect,
      [],
    )
    .option('--oauth-token-lifetime <seconds>', 'lifetime of OAuth access tokens (default 7200)', parseLifetime)
    .parse(argv);
  const options = program.opts<{
    tls: boolean;
    basePath: string;
    host: string;
    port: number;
    json: boolean;
    oauthRedirect: string[];
    oauthTokenLifetime?: number;
  }>();

  const gl = await startFakeGitLab({
    tls: options.tls,
    basePath: options.basePath,
    host: options.host,
    port: options.port,
    ...(options.oauthTokenLifetime === undefined ? {} : { oauthTokenLifetimeSeconds: options.oauthTokenLifetime }),
  });
  const token = seed(gl);
  const oauthApp =
    options.oauthRedirect.length === 0
      ? null
      : gl.addOAuthApplication({ name: 'forgelink (demo)', redirectUri: options.oauthRedirect, scopes: DEMO_OAUTH_SCOPES });
  const oauth = oauthApp && {
    clientId: oauthApp.clientId,
    clientSecret: oauthApp.clientSecret,
    redirectUris: oauthApp.redirectUris,
    scopes: oauthApp.scopes,
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ baseUrl: gl.baseUrl, token, caFile: gl.caFile, oauth })}\n`);
  } else {
    process.stdout.write(
      [
        `fake GitLab at ${gl.baseUrl}`,
        `demo user "demo", token (api, read_user): ${token}`,
        `clone: git clone ${gl.baseUrl}/demo/playground.git (any user name, the token as password)`,
        ...(oauth
          ? [
              `OAuth application "forgelink (demo)" (${oauth.scopes.join(', ')}), redirect ${oauth.redirectUris.join(' ')}`,
              `  client id:     ${oauth.clientId}`,
              `  client secret: ${oauth.clientSecret}`,
              `  sign in at ${gl.baseUrl}/users/sign_in as "demo" with any password`,
            ]
          : []),
        ...(gl.caFile ? [`test CA: ${gl.caFile}`] : []),
        'Ctrl-C stops it.',
        '',
      ].join('\n'),
    );
  }

  const stop = () => {
    // Interactive use: requests to routes the fake lacks are worth a note, not a failure.
    for (const request of gl.takeUnimplemented()) process.stderr.write(`fake-gitlab: not implemented: ${request.method} ${request.path}\n`);
    gl.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`fake-gitlab: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main(process.argv).catch((error: unknown) => {
  process.stderr.write(`fake-gitlab: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
