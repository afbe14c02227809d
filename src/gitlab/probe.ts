import { UpstreamError, type GitLabProbe, type GitLabTarget, type OutboundPolicy } from '../core/index.ts';
import { describeUrl, jsonBody, notGitLabBody, type RawResponse } from './errors.ts';
import { GitLabHttp } from './http.ts';
import type { GitLabTransportSettings } from './client.ts';
import { UnauthorizedBody, Version } from './schema.ts';

/**
 * Whether an anonymous `GET <base>/api/v4/version` answered like GitLab. GitLab requires
 * authentication there (GitLab docs: api/version.md) and its API answers an anonymous request with
 * `401 {"message":"401 Unauthorized"}` as JSON (api/rest/troubleshooting.md); with a session or
 * public access it answers `200 {"version": …}`. A web server, a proxy's sign-in page or another
 * product answers HTML, 404, or JSON of another shape.
 */
export function answersLikeGitLab(response: RawResponse): boolean {
  const json = jsonBody(response);
  if (json === undefined || json === null || typeof json !== 'object') return false;
  if (response.status === 200) return Version.safeParse(json).success;
  if (response.status === 401) {
    const body = UnauthorizedBody.safeParse(json);
    // Grape formats GitLab's API errors as "<status> <reason>" (lib/api/helpers.rb `unauthorized!`).
    return body.success && body.data.message.startsWith('401');
  }
  return false;
}

/** The anonymous probe used before any token is involved. */
export function createGitLabProbe(policy: OutboundPolicy, settings: GitLabTransportSettings = {}): GitLabProbe {
  return {
    async assertGitLab(target: GitLabTarget): Promise<void> {
      const http = GitLabHttp.create({ ...settings, baseUrl: target.baseUrl, caPem: target.caPem ?? null, policy });
      try {
        const response = await http.send('GET', http.url('/version'));
        if (answersLikeGitLab(response)) return;
        throw notGitLab(response, target.baseUrl);
      } finally {
        await http.close();
      }
    },
  };
}

function notGitLab(response: RawResponse, baseUrl: string): UpstreamError {
  if (jsonBody(response) === undefined) return notGitLabBody(response);
  return new UpstreamError(
    'not_gitlab',
    `${baseUrl} does not answer like a GitLab instance (${describeUrl(response.url)} gave ${response.status}). ` +
      'Check the URL, including the subpath if GitLab is served under one (https://host/gitlab).',
    { status: response.status },
  );
}
