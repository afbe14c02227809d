/**
 * Which rules a request to the GitLab origin falls under, from its path alone: the REST API, GraphQL, smart-HTTP
 * git, or anything else (the web interface, OAuth, LFS), which a run is not given.
 */
import type { RunPolicy } from './decision.ts';
import { splitRequestPath } from './paths.ts';

export type RequestKind = 'api' | 'graphql' | 'git' | 'other';

export function classifyRequest(policy: RunPolicy, path: string): RequestKind {
  const split = splitRequestPath(path, policy.basePath);
  if ('error' in split) {
    // A malformed path still goes to the rules of its family, which refuse it with a reason.
    const raw = path.split(/[?#]/, 1)[0] ?? '';
    if (/\/api\/v4(\/|$)/.test(raw)) return 'api';
    if (/\/(info\/refs|git-upload-pack|git-receive-pack)$/.test(raw)) return 'git';
    return 'other';
  }
  const { segments } = split;
  if (segments[0] === 'api' && segments[1] === 'v4') return 'api';
  if (segments[0] === 'api' && segments[1] === 'graphql' && segments.length === 2) return 'graphql';
  const last = segments.at(-1);
  if (last === 'git-upload-pack' || last === 'git-receive-pack' || (segments.at(-2) === 'info' && last === 'refs')) return 'git';
  return 'other';
}
