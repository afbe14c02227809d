import type { Command } from 'commander';
import { CliError, createApiClient, type ApiClient } from './api-client.ts';
import { loginFile, readLogin } from './client-config.ts';
import type { LocalActions } from './local-actions.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Where the CLI reads and writes: the process's own streams (`main.ts`); a test may run the CLI in its own process
 * with streams of its own.
 */
export type CliIo = {
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
};

/** The process's own streams, each looked up when first used (`process.stdin` starts reading once touched). */
export const processIo: CliIo = {
  get stdin() {
    return process.stdin;
  },
  get stdout() {
    return process.stdout;
  },
  get stderr() {
    return process.stderr;
  },
};

/** Where the local actions come from: loaded only by the commands that need them (serve, admin). */
export type LoadLocalActions = () => Promise<LocalActions>;

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** What every command group needs: the environment, the API, output, and the local actions. */
export type CliContext = {
  readonly env: Env;
  readonly io: CliIo;
  /** What the process exits with once the command returns (a command that ran but did not succeed sets 1). */
  exitCode: number;
  local(): Promise<LocalActions>;
  api(command: Command): Promise<ApiClient>;
  /** Whether `--json` was given. */
  json(command: Command): boolean;
  /** The server named by `--server`, `FORGELINK_SERVER` or `forgelink login`, checked to be an http(s) URL. */
  server(command: Command): Promise<string>;
  print(command: Command, value: unknown, human: () => string): void;
};

type Globals = { json?: boolean; server?: string };

/** `--server` must be an http(s) URL: `127.0.0.1:8080` would otherwise be read as a URL with the scheme `127.0.0.1`. */
export function checkedServer(text: string, source: string): string {
  const trimmed = text.trim().replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(trimmed)) throw new CliError(`${source} must start with http:// or https:// (got "${text}")`);
  try {
    new URL(trimmed);
  } catch {
    throw new CliError(`${source} is not a URL: "${text}"`);
  }
  return trimmed;
}

export function createContext(env: Env, loadLocal: LoadLocalActions, io: CliIo = processIo): CliContext {
  const globals = (command: Command) => command.optsWithGlobals<Globals>();
  async function server(command: Command): Promise<string> {
    const flag = globals(command).server;
    if (flag !== undefined) return checkedServer(flag, '--server');
    const fromEnv = env.FORGELINK_SERVER?.trim();
    if (fromEnv) return checkedServer(fromEnv, 'FORGELINK_SERVER');
    return (await readLogin(loginFile(env)))?.server ?? DEFAULT_SERVER;
  }
  return {
    env,
    io,
    exitCode: 0,
    local: loadLocal,
    json: (command) => globals(command).json === true,
    server,
    async api(command) {
      const root = await server(command);
      const stored = await readLogin(loginFile(env));
      const apiKey = env.FORGELINK_API_KEY?.trim() || (stored && stored.server === root ? stored.apiKey : null) || null;
      return createApiClient(root, apiKey);
    },
    print(command, value, human) {
      io.stdout.write(globals(command).json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
    },
  };
}
