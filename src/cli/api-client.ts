/** The CLI's HTTP client for forgelink's own API. */

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
  stream(path: string): Promise<ReadableStream<Uint8Array>>;
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
};

type ErrorBody = { error?: { code?: string; message?: string; field?: string } };

export function createApiClient(server: string, apiKey: string | null): ApiClient {
  const root = server.replace(/\/+$/, '');

  async function send(method: string, path: string, init: { body?: unknown; accept: string; timeoutMs: number | null }): Promise<Response> {
    if (apiKey === null) {
      throw new CliError(
        'no API key: run "forgelink login --server <url>" or set FORGELINK_API_KEY (an admin creates keys with "forgelink admin user add <name>")',
        { code: 'unauthenticated' },
      );
    }
    const headers: Record<string, string> = { authorization: `Bearer ${apiKey}`, accept: init.accept };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${root}/api/v1${path}`, {
        method,
        headers,
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        ...(init.timeoutMs === null ? {} : { signal: AbortSignal.timeout(init.timeoutMs) }),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      throw new CliError(`cannot reach the forgelink server at ${root}${cause ? ` (${cause})` : ''}: is "forgelink serve" running? Set FORGELINK_SERVER or use --server.`, {
        code: 'unreachable',
      });
    }
    if (response.ok) return response;
    const text = await response.text();
    let error: ErrorBody['error'];
    try {
      error = (JSON.parse(text) as ErrorBody).error;
    } catch {
      throw new CliError(`${root} answered ${response.status} with something that is not forgelink's JSON API`);
    }
    const flag = error?.field === undefined ? undefined : (CLI_NAMES[error.field] ?? error.field);
    throw new CliError(`${error?.message ?? `the server answered ${response.status}`}${flag === undefined ? '' : ` (${flag})`}`, {
      code: error?.code ?? `http_${response.status}`,
      ...(flag === undefined ? {} : { field: flag }),
    });
  }

  return {
    server: root,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      const response = await send(method, path, { body, accept: 'application/json', timeoutMs: 120_000 });
      if (response.status === 204) return undefined as T;
      const text = await response.text();
      try {
        return (text === '' ? undefined : JSON.parse(text)) as T;
      } catch {
        throw new CliError(`${root} answered ${response.status} with something that is not forgelink's JSON API`);
      }
    },
    async stream(path: string): Promise<ReadableStream<Uint8Array>> {
      const response = await send('GET', path, { accept: 'text/event-stream', timeoutMs: null });
      if (response.body === null) throw new CliError(`${root} sent an empty event stream`);
      return response.body;
    },
  };
}
