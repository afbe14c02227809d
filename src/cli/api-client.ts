/** The CLI's HTTP client for forgelink's own API. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
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
      throw new CliError(`cannot reach the forgelink server at ${root}${cause ? ` (${cause})` : ''}: is "forgelink serve" running? Set FORGELINK_SERVER or use --server.`);
    }
    if (response.ok) return response;
    const text = await response.text();
    let error: ErrorBody['error'];
    try {
      error = (JSON.parse(text) as ErrorBody).error;
    } catch {
      throw new CliError(`${root} answered ${response.status} with something that is not forgelink's JSON API`);
    }
    const field = error?.field ? ` (${CLI_NAMES[error.field] ?? error.field})` : '';
    throw new CliError(`${error?.message ?? `the server answered ${response.status}`}${field}`);
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
