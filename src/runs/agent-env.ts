import tls from 'node:tls';
import { hostOf } from '../core/index.ts';
import { SANDBOX_DEFAULT_PATH, SANDBOX_PATHS } from '../sandbox/index.ts';

/**
 * Where the run's CA bundle and git identity appear inside the sandbox (under /etc/forgelink, which every
 * sandbox has, on the host layout and on a run image alike). Every tool is pointed at the one bundle.
 */
export const CA_BUNDLE_PATH = `${SANDBOX_PATHS.generatedFiles}/ca-bundle.pem`;
export const GIT_SYSTEM_CONFIG_PATH = `${SANDBOX_PATHS.generatedFiles}/gitconfig`;
/** Debian's system CA bundle, which a brokered run's bundle replaces inside its sandbox. */
export const SYSTEM_CA_BUNDLE_PATH = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The git credential helper. Git runs it through the shell with `get`/`store`/`erase`; it answers `get`
 * with the token read from the environment at that moment, so the token is in no file, no URL and no
 * argument list (`printf` is a shell builtin: no process ever carries it in argv). Username `oauth2` works for
 * personal and OAuth tokens alike (docs/gitlab.md, "Git over HTTPS").
 */
const CREDENTIAL_HELPER = '!f() { test "$1" = get && printf "username=oauth2\\npassword=%s\\n" "$GITLAB_TOKEN"; }; f';

/** Where a run's sandbox asks forgelink for the connection's current token (answered by the run's own egress proxy). */
export const INTERNAL_TOKEN_URL = 'http://forgelink.internal/token';

/**
 * The helper for OAuth connections. An access token lives two hours and a run may outlast it, so `get` asks
 * the run's egress proxy for the current token (refreshed by forgelink when due) through the proxy variables,
 * with curl, or forgelink's own Node when the host has no curl; the token arrives on stdout, never in argv.
 * If neither answers, `$GITLAB_TOKEN` (the token the run started with) is the fallback.
 */
const OAUTH_CREDENTIAL_HELPER = [
  '!f() { test "$1" = get || return 0;',
  `t=$(curl -fsS --max-time 60 ${INTERNAL_TOKEN_URL} 2>/dev/null) ||`,
  `t=$(node -e 'fetch("${INTERNAL_TOKEN_URL}").then(async (r) => { if (!r.ok) process.exit(1); process.stdout.write(await r.text()); }, () => process.exit(1))' 2>/dev/null) ||`,
  't=$GITLAB_TOKEN;',
  'printf "username=oauth2\\npassword=%s\\n" "$t"; }; f',
].join(' ');

/** `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n`: config for every git command, ahead of any file. */
export function gitConfigEnv(entries: [string, string][]): Record<string, string> {
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(entries.length) };
  for (const [index, [key, value]] of entries.entries()) {
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  }
  return env;
}

export type AgentEnvInput = {
  runId: string;
  baseUrl: string;
  token: string;
  /** OAuth tokens expire during long runs: git then takes a fresh one from INTERNAL_TOKEN_URL. */
  kind: 'pat' | 'oauth';
  hasCa: boolean;
};

/** The complete environment of every command in a run's sandbox (docs/contract.md, "Inside a run's sandbox"). */
export function agentEnv(input: AgentEnvInput): Record<string, string> {
  const env: Record<string, string> = {
    // The sandbox's PATH puts forgelink's own Node 24 first, so Node agents honour NODE_USE_ENV_PROXY.
    PATH: SANDBOX_DEFAULT_PATH,
    LANG: 'C.UTF-8',
    GITLAB_TOKEN: input.token,
    GITLAB_OAUTH_BASE_URL: input.baseUrl,
    GITLAB_HOST: hostOf(input.baseUrl),
    FORGELINK_RUN_ID: input.runId,
    // Never prompt: there is nobody at a terminal, and a prompt would hang the run until its timeout.
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_SYSTEM: GIT_SYSTEM_CONFIG_PATH,
    ...gitConfigEnv([
      // An empty helper first clears any helper from other config files; ours is then the only one.
      ['credential.helper', ''],
      ['credential.helper', input.kind === 'oauth' ? OAUTH_CREDENTIAL_HELPER : CREDENTIAL_HELPER],
    ]),
  };
  if (input.hasCa) {
    Object.assign(env, {
      GIT_SSL_CAINFO: CA_BUNDLE_PATH,
      SSL_CERT_FILE: CA_BUNDLE_PATH,
      CURL_CA_BUNDLE: CA_BUNDLE_PATH,
      REQUESTS_CA_BUNDLE: CA_BUNDLE_PATH,
      NODE_EXTRA_CA_CERTS: CA_BUNDLE_PATH,
    });
  }
  return env;
}

/**
 * The CA bundle a run sees: the public roots plus the connection's private CA and, in a brokered run, the run's own
 * CA (docs/security.md, "Credential broker"), so the agent reaches the self-hosted GitLab, the broker and public hosts alike.
 */
export function caBundle(extra: readonly string[]): string {
  publicRoots ??= tls.rootCertificates.join('\n');
  return `${publicRoots}\n${extra.join('\n')}`;
}

/** Node's public roots as one PEM text (200 KB), joined once per process. */
let publicRoots: string | undefined;

/** System-level git config: the identity commits are made with, unless the agent sets its own. */
export function gitIdentityConfig(account: { username: string; name: string } | null, host: string): string {
  const name = account?.name || account?.username || 'forgelink agent';
  const email = account ? `${account.username}@users.noreply.${host.replace(/:\d+$/, '')}` : `agent@forgelink.invalid`;
  const quote = (value: string) => `"${value.replace(/["\\]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`;
  return `[user]\n\tname = ${quote(name)}\n\temail = ${quote(email)}\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n`;
}
