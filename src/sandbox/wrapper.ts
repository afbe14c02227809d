/** Where things are inside every sandbox. */
export const SANDBOX_PATHS = {
  workspace: '/workspace',
  home: '/home/agent',
  /** The run's own directory: the proxy socket and the entry script, read-only. */
  runtime: '/run/forgelink',
  proxySocket: '/run/forgelink/proxy.sock',
  wrapper: '/run/forgelink/wrapper.sh',
  /** The run's own files (CA bundle, git config) live here; with a run image it is a tmpfs of its own. */
  generatedFiles: '/etc/forgelink',
  /** The Node that runs forgelink, read-only, so Node agents (Claude Code and the like) run on Node 24. */
  nodeBin: '/opt/forgelink/bin',
  /** Where a run's repository-cache mirror is bound, read-only (runs/repo-cache.ts). */
  mirror: '/opt/forgelink/mirror',
} as const;

/** The TCP port the proxy bridge listens on, on the sandbox's own loopback (its network namespace has nothing else). */
export const PROXY_PORT = 3128;

/** PATH when the caller's environment has none: forgelink's Node first, then the system's. */
export const SANDBOX_DEFAULT_PATH = `${SANDBOX_PATHS.nodeBin}:/usr/local/bin:/usr/bin:/bin`;

/**
 * The entry point of every command: start socat bridging 127.0.0.1:PORT to the run's proxy socket, wait
 * until it listens (read from /proc/net/tcp with shell builtins; it is up within a few reads, and only a slow
 * start falls back to sleeping, up to about 5 s), run the
 * command, stop socat, and exit with the command's status. The command arrives as "$@" and is never
 * part of the script's text. Exit 125 means the bridge did not come up.
 */
export function wrapperScript(port: number = PROXY_PORT): string {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return `#!/bin/sh
# forgelink sandbox entry; see src/sandbox/wrapper.ts.
# SIGTERM is meant for the command (see bubblewrap.ts); the wrapper notes it and leaves when it can.
# A handler, not an ignore, so the command starts with the default disposition.
trap 'forgelink_stop=1' TERM
/usr/bin/socat TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,nodelay UNIX-CONNECT:${SANDBOX_PATHS.proxySocket} </dev/null &
forgelink_bridge=$!
forgelink_listening() {
  while read -r _ forgelink_local _ forgelink_state _; do
    if [ "$forgelink_local" = "0100007F:${hexPort}" ] && [ "$forgelink_state" = "0A" ]; then return 0; fi
  done </proc/net/tcp
  return 1
}
forgelink_tries=0
until forgelink_listening; do
  forgelink_tries=$((forgelink_tries + 1))
  if [ -n "$forgelink_stop" ]; then exit 143; fi
  if [ "$forgelink_tries" -gt 700 ] || ! kill -0 "$forgelink_bridge" 2>/dev/null; then
    echo "forgelink: the sandbox's proxy bridge did not start" >&2
    exit 125
  fi
  if [ "$forgelink_tries" -gt 200 ]; then sleep 0.01; fi
done
unset forgelink_tries
if [ -n "$forgelink_stop" ]; then exit 143; fi
"$@"
forgelink_status=$?
kill "$forgelink_bridge" 2>/dev/null
exit "$forgelink_status"
`;
}

/** The proxy variables every command gets; they win over the caller's. */
export function proxyEnv(port: number = PROXY_PORT): Record<string, string> {
  const url = `http://127.0.0.1:${port}`;
  // Empty, and overriding the caller's: 127.0.0.1 in an allowlist means the host's loopback (a GitLab on
  // the same machine), which only the proxy can reach. The sandbox's own loopback holds nothing but what
  // the agent starts itself; clients reach that with their own no-proxy switch (curl --noproxy).
  const noProxy = '';
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    ALL_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    all_proxy: url,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    NODE_USE_ENV_PROXY: '1',
  };
}

/**
 * The environment a command runs with: the caller's, HOME and PATH when absent, the proxy variables, and
 * PWD (the wrapper shell would export it anyway; set here it is at least always the real cwd).
 */
export function sandboxEnv(given: Readonly<Record<string, string>>, cwd: string, port: number = PROXY_PORT): Record<string, string> {
  return {
    HOME: SANDBOX_PATHS.home,
    PATH: SANDBOX_DEFAULT_PATH,
    ...given,
    ...proxyEnv(port),
    PWD: cwd,
  };
}
