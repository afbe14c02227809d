import {
  UpstreamError,
  type Account,
  type GitLabClient,
  type GitLabClientFactory,
  type InstanceInfo,
  type OutboundPolicy,
  type Project,
  type RotatedToken,
  type TokenInfo,
} from '../core/index.ts';
import { GitLabHttp, type GitLabHttpOptions } from './http.ts';
import { toProject } from './project-mapping.ts';
import { createProjectsApi } from './projects-api.ts';
import { CurrentUser, Metadata, PersonalAccessToken, ProjectItem, RotatedPersonalAccessToken } from './schema.ts';

export type GitLabClientOptions = GitLabHttpOptions & { token: string; tokenKind: 'pat' | 'oauth' };

/** Transport settings a factory passes to every client it makes (timeouts, retries, logger, test hooks). */
export type GitLabTransportSettings = Omit<GitLabHttpOptions, 'baseUrl' | 'token' | 'tokenKind' | 'caPem' | 'policy'>;

// GitLab docs (api/projects.md, "List all projects"): membership + min_access_level=30 is "Developer or
// more"; archived projects can't be pushed to. Keyset paging (`pagination=keyset`, which needs
// order_by=id) is what GitLab recommends for /projects: offset paging gets slow and loses totals on
// large instances. Keyset ignores `page`, and we follow `Link: rel="next"` either way.
const PROJECT_QUERY = {
  membership: true,
  min_access_level: 30,
  archived: false,
  per_page: 100,
  order_by: 'id',
  sort: 'asc',
  pagination: 'keyset',
} as const;

/** A GitLab REST client bound to one instance and one token. */
export function createGitLabClient(options: GitLabClientOptions): GitLabClient {
  const http = GitLabHttp.create(options);
  return {
    ...createProjectsApi(http),

    async inspectToken(): Promise<TokenInfo | null> {
      try {
        const token = await http.get('/personal_access_tokens/self', PersonalAccessToken);
        return {
          id: token.id,
          name: token.name,
          scopes: token.scopes,
          expiresAt: token.expires_at,
          active: token.active,
          revoked: token.revoked,
          userId: token.user_id,
        };
      } catch (error) {
        // docs/gitlab.md, "Inspecting a token": for OAuth and other non-PAT tokens GitLab answers 400 "This endpoint
        // requires token type to be a personal access token"; match on the status, not the text.
        if (error instanceof UpstreamError && error.status === 400) return null;
        throw error;
      }
    },

    async currentUser(): Promise<Account> {
      const user = await http.get('/user', CurrentUser);
      return { id: user.id, username: user.username, name: user.name };
    },

    async metadata(): Promise<InstanceInfo> {
      const meta = await http.get('/metadata', Metadata);
      return { version: meta.version, revision: meta.revision, enterprise: meta.enterprise };
    },

    async *projects(query: { search?: string } = {}): AsyncGenerator<Project, void, undefined> {
      const search = query.search?.trim() || undefined;
      let yielded = false;
      try {
        for await (const item of http.paginate('/projects', { ...PROJECT_QUERY, search }, ProjectItem)) {
          yielded = true;
          yield toProject(item);
        }
      } catch (error) {
        // Instances that cannot keyset-page this request answer 405 "Keyset pagination is not yet
        // available for this type of request" (lib/api/helpers/pagination_strategies.rb); offset
        // paging through the same `Link` headers still lists everything.
        if (yielded || !(error instanceof UpstreamError) || error.status !== 405) throw error;
        const { pagination: _keyset, ...offset } = PROJECT_QUERY;
        for await (const item of http.paginate('/projects', { ...offset, search }, ProjectItem)) yield toProject(item);
      }
    },

    async rotateSelf(expiresAt: string): Promise<RotatedToken> {
      // A POST: the HTTP layer never retries it after a 5xx or a network failure, since GitLab may have rotated.
      const rotated = await http.post('/personal_access_tokens/self/rotate', RotatedPersonalAccessToken, { expires_at: expiresAt });
      return { token: rotated.token, id: rotated.id, expiresAt: rotated.expires_at ?? null, scopes: rotated.scopes ?? null };
    },

    close: () => http.close(),
  };
}

/** A `GitLabClientFactory` applying the operator's outbound policy and shared transport settings. */
export function gitlabClientFactory(policy: OutboundPolicy, settings: GitLabTransportSettings = {}): GitLabClientFactory {
  return (target, credentials) =>
    createGitLabClient({
      ...settings,
      baseUrl: target.baseUrl,
      caPem: target.caPem ?? null,
      policy,
      token: credentials.token,
      tokenKind: credentials.kind,
    });
}
