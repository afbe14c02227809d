/**
 * The CLI's HTTP client for forgelink's own API, on `node:http` / `node:https`: Node's built-in `fetch` costs a
 * command about 0.1 s to load (undici and its WebAssembly parser) before it sends anything (docs/architecture.md).
 */
import type { IncomingMessage } from 'node:http';

/**
 * A failure the CLI words for its user: `code` as the API's error codes (`cli_error` for the CLI's own checks),
 * `field` the flag or argument as typed (`--ca-file`), `exitCode` 1 unless said otherwise.
 */
export class CliError extends Error {
  readonly exitCode: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(message: string, options: { exitCode?: number; code?: string; field?: string } = {}) {
    super(message);
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? 1;
    this.code = options.code ?? 'cli_error';
    this.field = options.field;
  }
}

export type ApiClient = {
  readonly server: string;
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** GET as `text/event-stream`; resolves with the body once the server accepted. */
  stream(path: string): Promise<AsyncIterable<Uint8Array>>;
};

/** The API's field names as the CLI user typed them. */
const CLI_NAMES: Record<string, string> = {
  connectionId: '--connection',
  project: '--project',
  branch: '--branch',
  command: 'command',
  allowHosts: '--allow-host',
  timeoutSeconds: '--timeout',
  limit: '--limit',
  baseUrl: '--url',
  caPem: '--ca-file',
  label: '--label',
  token: 'token',
  hosts: '--host',
  secrets: '--secret',
  'rotation.enabled': '--enable',
  'rotation.lifetimeDays': '--lifetime',
  'rotation.thresholdDays': '--threshold',
  credentials: '--credentials',
};

type ErrorBody = { error?: { code?: string; message?: string; field?: string } };

export function createApiClient(server: string, apiKey: string | null): ApiClient {
  const root = server.replace(/\/+$/, '');

  /** Sends one request; resolves once the response's head arrived. Any failure to get there is the server's unreachability. */
  async function open(method: string, path: string, init: { body?: unknown; accept: string; timeoutMs: number | null }): Promise<IncomingMessage> {
    const url = new URL(`${root}/api/v1${path}`);
    // Not `import('node:http')`: an ES import of a built-in reads all its exports, and `http.WebSocket` loads undici.
    const { request } = url.protocol === 'https:' ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
    const payload = init.body === undefined ? undefined : Buffer.from(JSON.stringify(init.body), 'utf8');
    const headers: Record<string, string> = { authorization: `Bearer ${apiKey}`, accept: init.accept };
    if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(payload.length) });
    return new Promise((resolve, reject) => {
      const sent = request(url, { method, headers, ...(init.timeoutMs === null ? {} : { signal: AbortSignal.timeout(init.timeoutMs) }) }, resolve);
      sent.on('error', reject);
      sent.end(payload);
    });
  }

  async function text(response: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async function send(method: string, path: string, init: { body?: unknown; accept: string; timeoutMs: number | null }): Promise<IncomingMessage> {
    if (apiKey === null) {
      throw new CliError(
        'no API key: run "forgelink login --server <url>" or set FORGELINK_API_KEY (an admin creates keys with "forgelink admin user add <name>")',
        { code: 'unauthenticated' },
      );
    }
    let response: IncomingMessage;
    try {
      response = await open(method, path, init);
    } catch (error) {
      const cause = (error as { code?: unknown }).code;
      throw new CliError(`cannot reach the forgelink server at ${root}${typeof cause === 'string' ? ` (${cause})` : ''}: is "forgelink serve" running? Set FORGELINK_SERVER or use --server.`, {
        code: 'unreachable',
      });
    }
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) return response;
    const body = await text(response);
    let error: ErrorBody['error'];
    try {
      error = (JSON.parse(body) as ErrorBody).error;
    } catch {
      throw new CliError(`${root} answered ${status} with something that is not forgelink's JSON API`);
    }
    const flag = error?.field === undefined ? undefined : (CLI_NAMES[error.field] ?? error.field);
    throw new CliError(`${error?.message ?? `the server answered ${status}`}${flag === undefined ? '' : ` (${flag})`}`, {
      code: error?.code ?? `http_${status}`,
      ...(flag === undefined ? {} : { field: flag }),
    });
  }

  return {
    server: root,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      const response = await send(method, path, { body, accept: 'application/json', timeoutMs: 120_000 });
      const received = await text(response);
      if (response.statusCode === 204) return undefined as T;
      try {
        return (received === '' ? undefined : JSON.parse(received)) as T;
      } catch {
        throw new CliError(`${root} answered ${response.statusCode} with something that is not forgelink's JSON API`);
      }
    },
    async stream(path: string): Promise<AsyncIterable<Uint8Array>> {
      return send('GET', path, { accept: 'text/event-stream', timeoutMs: null });
    },
  };
}
