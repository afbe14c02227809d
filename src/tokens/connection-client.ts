import { ConflictError, type Connection, type GitLabClient, type GitLabClientFactory, type Project, type TokenProvider } from '../core/index.ts';
import { isTokenRejection } from './provider.ts';

/**
 * A GitLab client for a connection rather than for one token: every call takes the connection's current token
 * from the provider, and a call GitLab refuses with 401 is made once more with a refreshed OAuth token. A run
 * that outlives its access token keeps working this way.
 */
export function createConnectionClient(deps: { gitlab: GitLabClientFactory; tokens: TokenProvider }, connection: Connection): GitLabClient {
  const target = { baseUrl: connection.baseUrl, caPem: connection.caPem };
  const clients = new Map<string, GitLabClient>();

  function clientFor(token: string): GitLabClient {
    let client = clients.get(token);
    if (client === undefined) {
      client = deps.gitlab(target, { token, kind: connection.kind });
      clients.set(token, client);
    }
    return client;
  }

  function call<T>(use: (client: GitLabClient) => Promise<T>): Promise<T> {
    return deps.tokens.withToken(connection, (token) => use(clientFor(token)));
  }

  async function* projects(options: { search?: string } = {}): AsyncGenerator<Project, void, undefined> {
    const token = await deps.tokens.currentToken(connection);
    let yielded = false;
    try {
      for await (const project of clientFor(token).projects(options)) {
        yielded = true;
        yield project;
      }
    } catch (error) {
      // Only a refusal of the first page can be retried without handing out a project twice.
      if (yielded || connection.kind !== 'oauth' || !isTokenRejection(error)) throw error;
      yield* clientFor(await deps.tokens.refresh(connection, token, error)).projects(options);
    }
  }

  return {
    inspectToken: () => call((client) => client.inspectToken()),
    currentUser: () => call((client) => client.currentUser()),
    metadata: () => call((client) => client.metadata()),
    projects,
    getProject: (idOrPath) => call((client) => client.getProject(idOrPath)),
    protectedBranches: (projectId) => call((client) => client.protectedBranches(projectId)),
    branchExists: (projectId, branch) => call((client) => client.branchExists(projectId, branch)),
    mergeRequests: (projectId, filter) => call((client) => client.mergeRequests(projectId, filter)),
    issues: (projectId, filter) => call((client) => client.issues(projectId, filter)),
    // Rotation is not a call like the others: the rotator makes it with the exact stored token, under its write-ahead
    // intent (tokens/rotator.ts). Made here, a crash would lose the new token and a retry revoke its family.
    rotateSelf: () =>
      Promise.reject(new ConflictError('rotation_outside_rotator', 'Tokens are rotated by the rotator only (forgelink connections rotate).')),
    async close() {
      const open = [...clients.values()];
      clients.clear();
      await Promise.all(open.map((client) => client.close()));
    },
  };
}
