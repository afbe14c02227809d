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
};

/** The API's field names as the CLI user typed them. */
const CLI_NAMES: Record<string, string> = { baseUrl: '--url', caPem: '--ca-file', label: '--label', token: 'token' };

type ErrorBody = { error?: { code?: string; message?: string; field?: string } };

export function createApiClient(server: string, apiKey: string | null): ApiClient {
  const root = server.replace(/\/+$/, '');
  return {
    server: root,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      if (apiKey === null) {
        throw new CliError(
          'no API key: run "forgelink login --server <url>" or set FORGELINK_API_KEY (an admin creates keys with "forgelink admin user add <name>")',
        );
      }
      const headers: Record<string, string> = { authorization: `Bearer ${apiKey}`, accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = 'application/json';
      let response: Response;
      try {
        response = await fetch(`${root}/api/v1${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(120_000),
        });
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause?.code;
        throw new CliError(`cannot reach the forgelink server at ${root}${cause ? ` (${cause})` : ''}: is "forgelink serve" running? Set FORGELINK_SERVER or use --server.`);
      }
      if (response.status === 204) return undefined as T;
      const text = await response.text();
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        throw new CliError(`${root} answered ${response.status} with something that is not forgelink's JSON API`);
      }
      if (!response.ok) {
        const error = (json as ErrorBody | undefined)?.error;
        const field = error?.field ? ` (${CLI_NAMES[error.field] ?? error.field})` : '';
        throw new CliError(`${error?.message ?? `the server answered ${response.status}`}${field}`);
      }
      return json as T;
    },
  };
}
