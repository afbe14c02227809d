import { splitRequestPath } from './paths.ts';
import type { BrokerRecord } from './proxy.ts';

/**
 * What one write the broker let through created in the run's project, as far as the request and its answer show:
 * `POST …/projects/<project>/issues` or `…/merge_requests` answered 201, with the new object's iid when the broker
 * read the answer (`iid` null when it streamed it through). A GraphQL write may create either kind, unseen: `graphql`.
 * Anything else, null.
 */
export function createdByWrite(
  record: BrokerRecord,
  project: { id: number | null; path: string; basePath: string },
): { kind: 'issue' | 'merge_request'; iid: number | null } | { kind: 'graphql' } | null {
  if (!record.allowed || record.method !== 'POST' || record.status === null || record.status < 200 || record.status >= 300) return null;
  const slash = record.target.indexOf('/');
  const split = splitRequestPath(slash < 0 ? '/' : record.target.slice(slash), project.basePath);
  if ('error' in split) return null;
  const [api, version, projects, ref, kind, ...rest] = split.segments;
  if (api === 'api' && version === 'graphql' && projects === undefined) return { kind: 'graphql' };
  if (api !== 'api' || version !== 'v4' || projects !== 'projects' || ref === undefined || rest.length > 0 || record.status !== 201) return null;
  if (ref !== project.path && (project.id === null || ref !== String(project.id))) return null;
  if (kind !== 'issues' && kind !== 'merge_requests') return null;
  return { kind: kind === 'issues' ? 'issue' : 'merge_request', iid: record.createdIid ?? null };
}
