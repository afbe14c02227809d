/**
 * A user's named secrets (`ANTHROPIC_API_KEY`…): which names and values are accepted. A secret reaches a run's
 * sandbox as an environment variable of its name, so a name that changes how the sandbox, its tools or its
 * network work is refused (docs/security.md, "Secrets").
 */
import { MIN_SECRET_LENGTH } from './scrub.ts';

/** Longest name accepted. */
export const MAX_SECRET_NAME_LENGTH = 128;
/** Largest value accepted, in bytes of UTF-8. */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;
/** Hosts one secret may be bound to. */
export const MAX_SECRET_HOSTS = 20;

/**
 * Names forgelink sets in every sandbox, and names that change how the loader, the shell, git, TLS, the proxy or
 * an interpreter behave. A secret under one of them could override forgelink's own setting (the proxy, the CA
 * bundle, the git credential helper) or run code the agent did not ask for.
 */
const RESERVED_NAMES: ReadonlyMap<string, string> = new Map([
  ['PATH', 'it decides which programs run'],
  ['HOME', 'it is the sandbox user\'s home directory'],
  ['USER', 'it names the sandbox user'],
  ['LOGNAME', 'it names the sandbox user'],
  ['SHELL', 'it names the sandbox user\'s shell'],
  ['PWD', 'the shell sets it'],
  ['OLDPWD', 'the shell sets it'],
  ['IFS', 'it changes how the shell splits words'],
  ['CDPATH', 'it changes how the shell finds directories'],
  ['ENV', 'the shell runs the file it names'],
  ['BASH_ENV', 'bash runs the file it names'],
  ['SHELLOPTS', 'it changes how bash behaves'],
  ['BASHOPTS', 'it changes how bash behaves'],
  ['PS4', 'the shell expands it when tracing'],
  ['PROMPT_COMMAND', 'the shell runs it'],
  ['TMPDIR', 'it moves temporary files out of the sandbox\'s /tmp'],
  ['TMP', 'it moves temporary files out of the sandbox\'s /tmp'],
  ['TEMP', 'it moves temporary files out of the sandbox\'s /tmp'],
  ['LANG', 'forgelink sets it'],
  ['LANGUAGE', 'it changes which message catalogs load'],
  ['TZDIR', 'it changes which files the C library loads'],
  ['GCONV_PATH', 'it makes the C library load code'],
  ['GETCONF_DIR', 'it changes which files the C library loads'],
  ['LOCPATH', 'it changes which files the C library loads'],
  ['NLSPATH', 'it changes which files the C library loads'],
  ['HOSTALIASES', 'it changes how host names resolve'],
  ['LOCALDOMAIN', 'it changes how host names resolve'],
  ['RES_OPTIONS', 'it changes how host names resolve'],
  ['RESOLV_HOST_CONF', 'it changes how host names resolve'],
  ['MALLOC_TRACE', 'it makes the C library write files'],
  ['HTTP_PROXY', 'it is the run\'s egress proxy'],
  ['HTTPS_PROXY', 'it is the run\'s egress proxy'],
  ['ALL_PROXY', 'it is the run\'s egress proxy'],
  ['NO_PROXY', 'it decides what bypasses the run\'s egress proxy'],
  ['FTP_PROXY', 'it changes the run\'s egress proxy'],
  ['CURL_CA_BUNDLE', 'forgelink sets the CA bundle'],
  ['REQUESTS_CA_BUNDLE', 'forgelink sets the CA bundle'],
  ['NODE_OPTIONS', 'it makes Node load code and change its flags'],
  ['NODE_PATH', 'it changes where Node loads modules from'],
  ['NODE_EXTRA_CA_CERTS', 'forgelink sets the CA bundle'],
  ['NODE_USE_ENV_PROXY', 'forgelink sets it to send Node through the egress proxy'],
  ['NODE_TLS_REJECT_UNAUTHORIZED', 'it turns TLS verification off'],
  ['PERL5LIB', 'it makes Perl load code'],
  ['PERL5OPT', 'it makes Perl load code'],
  ['PERLLIB', 'it makes Perl load code'],
  ['RUBYOPT', 'it makes Ruby load code'],
  ['RUBYLIB', 'it makes Ruby load code'],
  ['CLASSPATH', 'it makes Java load code'],
  ['JAVA_TOOL_OPTIONS', 'it makes Java load code'],
  ['_JAVA_OPTIONS', 'it makes Java load code'],
  ['JDK_JAVA_OPTIONS', 'it makes Java load code'],
  ['SSH_AUTH_SOCK', 'it points ssh at an agent socket'],
  ['EDITOR', 'git and other tools run it'],
  ['VISUAL', 'git and other tools run it'],
  ['PAGER', 'git and other tools run it'],
]);

/** Prefixes of reserved families, with why. */
const RESERVED_PREFIXES: readonly (readonly [string, string])[] = [
  ['GITLAB_', 'forgelink gives the run its GitLab connection under GITLAB_* names'],
  ['FORGELINK_', 'forgelink\'s own settings and run variables use FORGELINK_* names'],
  ['GIT_', 'GIT_* variables configure git, including its credential helper'],
  ['LD_', 'LD_* variables make the dynamic loader load code'],
  ['SSL_CERT_', 'SSL_CERT_* variables replace the CA bundle'],
  ['PYTHON', 'PYTHON* variables make Python load code or change how it starts'],
  ['BASH_FUNC_', 'bash imports functions from BASH_FUNC_* variables'],
  ['LC_', 'LC_* variables change which locale files load'],
  ['MALLOC_', 'MALLOC_* variables change the C library\'s allocator'],
  ['GLIBC_', 'GLIBC_* variables tune the C library'],
];

/**
 * Why `name` cannot be a secret's name, or null when it can. Names are upper-case environment-variable names
 * (`[A-Z_][A-Z0-9_]*`): lower-case is refused so that `http_proxy` and `HTTP_PROXY` (which tools treat alike) can
 * never be told apart, and so one secret has one spelling.
 */
export function secretNameProblem(name: string): string | null {
  if (name === '') return 'is empty';
  if (name.length > MAX_SECRET_NAME_LENGTH) return `is longer than ${MAX_SECRET_NAME_LENGTH} characters`;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    return 'is not an environment variable name: use upper-case letters, digits and underscores, not starting with a digit (e.g. ANTHROPIC_API_KEY)';
  }
  const upper = name.toUpperCase();
  const reserved = RESERVED_NAMES.get(upper);
  const prefix = RESERVED_PREFIXES.find(([start]) => upper.startsWith(start));
  const why = reserved ?? prefix?.[1];
  if (why !== undefined) return `is reserved in the run's sandbox: ${why}`;
  if (name !== upper) return `must be upper-case (${upper})`;
  return null;
}

/** Why `value` cannot be a secret's value, or null when it can. */
export function secretValueProblem(value: string): string | null {
  if (value === '') return 'is empty';
  if (value.includes('\0')) return 'contains a NUL character, which an environment variable cannot hold';
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SECRET_VALUE_BYTES) return `is ${bytes} bytes; a secret may be at most ${MAX_SECRET_VALUE_BYTES} bytes (64 KiB)`;
  // Run logs are scrubbed of every value a run receives; shorter strings are not redacted (see scrub.ts).
  if (value.length < MIN_SECRET_LENGTH) return `is shorter than ${MIN_SECRET_LENGTH} characters, too short to be redacted from run logs reliably`;
  return null;
}
