import { UpstreamError, type GitLabProbe, type GitLabTarget, type OutboundPolicy } from '../core/index.ts';
import { closedWithoutAnswer, describeUrl, jsonBody, notGitLabBody, type RawResponse } from './errors.ts';
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
  /** `GET <base>/api/v4/version`, through the outbound policy like every request to GitLab. */
  async function version(target: GitLabTarget): Promise<RawResponse> {
    const http = GitLabHttp.create({ ...settings, baseUrl: target.baseUrl, caPem: target.caPem ?? null, policy });
    try {
      return await http.send('GET', http.url('/version'));
    } finally {
      await http.close();
    }
  }

  /**
   * An http:// URL whose server closed the connection unanswered: asks the same host and port once over HTTPS. An
   * answer, or a certificate forgelink cannot verify, shows the port speaks TLS; the error then names the https:// URL.
   */
  async function tlsHint(target: GitLabTarget, error: unknown): Promise<UpstreamError | null> {
    const url = new URL(target.baseUrl);
    if (url.protocol !== 'http:' || !closedWithoutAnswer(error)) return null;
    const port = url.port === '' ? '80' : url.port;
    url.protocol = 'https:';
    url.port = port;
    const https = url.toString().replace(/\/$/, '');
    let certificate: UpstreamError | null = null;
    try {
      await version({ ...target, baseUrl: https });
    } catch (second) {
      if (!(second instanceof UpstreamError && second.reason === 'certificate')) return null;
      certificate = second;
    }
    const host = new URL(target.baseUrl).host;
    const why = /: (its certificate [^(]*?) \(/.exec(certificate?.message ?? '')?.[1];
    const ca = certificate === null ? '' : `, with the CA certificate of its private authority${why === undefined ? '' : ` (${why})`}`;
    return new UpstreamError(
      'unreachable',
      `${host} closed the connection on a plain HTTP request but answers HTTPS on the same port: use ${https}${ca}.`,
      { cause: error },
    );
  }

  return {
    async assertGitLab(target: GitLabTarget): Promise<void> {
      let response: RawResponse;
      try {
        response = await version(target);
      } catch (error) {
        throw (await tlsHint(target, error)) ?? error;
      }
      if (answersLikeGitLab(response)) return;
      throw notGitLab(response, target.baseUrl);
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
