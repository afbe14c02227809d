/**
 * The run policy the credential broker enforces at the GitLab origin, as pure decisions: one call per request,
 * no I/O (docs/security.md, "Run policy"). This file holds the git rules (smart HTTP and the ref updates of a
 * push) and re-exports the REST, GraphQL and option rules from their files, so callers import one module.
 */
import { ALLOW, decideBranchChange, isRunProject, quote, refuse, type BranchChange, type Decision, type RunPolicy } from './decision.ts';
import { paramValues, splitRequestPath } from './paths.ts';
import { isZeroId, type ReceivePackCommands, type RefUpdate } from './receive-pack.ts';
import { decideApiRequest, type ApiRequest } from './rest-rules.ts';
import { decideGraphql } from './graphql-rules.ts';
import { classifyRequest } from './classify.ts';
import { decideQuickActions } from './quick-actions.ts';

export { ALLOW, decideBranchChange, matchesProtectedPattern, type BranchChange, type Decision, type RunPolicy } from './decision.ts';
export { RECEIVE_PACK_COMMANDS_LIMIT, parseReceivePackCommands, type ReceivePackCommands, type RefUpdate } from './receive-pack.ts';
export { decideApiRequest, type ApiRequest } from './rest-rules.ts';
export { decideGraphql } from './graphql-rules.ts';
export { classifyRequest, type RequestKind } from './classify.ts';
export { DEFAULT_POLICY_OPTIONS, PolicyOptionsSchema, resolvePolicyOptions, type PolicyOptions, type RunPolicyRequest } from './policy-options.ts';

export type GitRequest = { method: string; path: string; query?: string | URLSearchParams };

/** Answers whether `newId` descends from `oldId` (a fast-forward); undefined when it cannot tell. */
export type IsAncestor = (oldId: string, newId: string) => boolean | undefined;

type Repository = { kind: 'project' | 'wiki' | 'snippet' | 'design'; path: string };

/** What repository a smart-HTTP path names, as GitLab's git routes read it (`<namespace>/<project>(.git)`). */
function repositoryOf(segments: string[]): Repository | null {
  if (segments.length < 2) return null;
  const last = segments.at(-1) ?? '';
  const name = last.endsWith('.git') ? last.slice(0, -'.git'.length) : last;
  const parts = [...segments.slice(0, -1), name];
  // Snippet repositories: `snippets/<id>.git` and `<project>/-/snippets/<id>.git` (older: `<project>/snippets/<id>.git`).
  if (parts.at(-2) === 'snippets' && /^\d+$/.test(name)) return { kind: 'snippet', path: parts.join('/') };
  if (parts.includes('-')) return null;
  if (name.endsWith('.wiki')) return { kind: 'wiki', path: [...parts.slice(0, -1), name.slice(0, -'.wiki'.length)].join('/') };
  if (name.endsWith('.design')) return { kind: 'design', path: [...parts.slice(0, -1), name.slice(0, -'.design'.length)].join('/') };
  if (name === '') return null;
  return { kind: 'project', path: parts.join('/') };
}

/**
 * A smart-HTTP git request under the GitLab origin: `GET …/info/refs?service=git-upload-pack|git-receive-pack`,
 * `POST …/git-upload-pack`, `POST …/git-receive-pack`. Fetching the run's project (and its wiki) is allowed, other
 * repositories only with `readOtherProjects`; pushing only to the run's project. Everything else git could ask for
 * (the dumb protocol, LFS) is refused.
 */
export function decideGitRequest(policy: RunPolicy, request: GitRequest): Decision {
  const split = splitRequestPath(request.path, policy.basePath);
  if ('error' in split) return refuse('git.path', `${split.error}; use the project's clone URL as GitLab gives it`);
  const { segments } = split;
  const method = request.method.toUpperCase();
  let service: 'upload' | 'receive';
  let action: string[];
  if (segments.at(-2) === 'info' && segments.at(-1) === 'refs') {
    action = segments.slice(0, -2);
    const services = paramValues(request.query, 'service');
    if (method !== 'GET') return refuse('git.method', `${method} of info/refs refused: git asks for it with GET`);
    if (services.length !== 1 || (services[0] !== 'git-upload-pack' && services[0] !== 'git-receive-pack')) {
      return refuse('git.unsupported', 'info/refs without service=git-upload-pack or git-receive-pack (the dumb protocol) is refused; use git over smart HTTP');
    }
    service = services[0] === 'git-upload-pack' ? 'upload' : 'receive';
  } else if (segments.at(-1) === 'git-upload-pack' || segments.at(-1) === 'git-receive-pack') {
    action = segments.slice(0, -1);
    if (method !== 'POST') return refuse('git.method', `${method} of ${segments.at(-1)} refused: git sends it with POST`);
    service = segments.at(-1) === 'git-upload-pack' ? 'upload' : 'receive';
  } else {
    return refuse('git.unsupported', 'only git fetch and push over smart HTTP are allowed at the repository URL (not LFS or other git endpoints)');
  }
  const repository = repositoryOf(action);
  if (repository === null) return refuse('git.path', 'the URL names no repository; use the project\'s clone URL as GitLab gives it');
  const own = isRunProject(policy, repository.path);
  if (service === 'upload') {
    if (own || policy.readOtherProjects) return ALLOW;
    return refuse(
      'git.read_other_project',
      `fetching ${quote(repository.path)} refused: this run may read only ${quote(policy.projectPath)} (the operator or the run did not allow reading other projects)`,
    );
  }
  if (own && repository.kind === 'project') return ALLOW;
  if (own) {
    return refuse('git.push_other_repository', `pushing to the ${repository.kind} repository of ${quote(policy.projectPath)} refused: a run pushes only to the project's own repository`);
  }
  return refuse('git.push_other_project', `pushing to ${quote(repository.path)} refused: this run may push only to ${quote(policy.projectPath)}`);
}

const ALLOWED_PUSH_OPTIONS = new Set([
  'merge_request.create',
  'merge_request.target',
  'merge_request.title',
  'merge_request.description',
  'merge_request.draft',
  'merge_request.label',
  'merge_request.unlabel',
  'merge_request.assign',
  'merge_request.unassign',
  'merge_request.milestone',
  'merge_request.remove_source_branch',
  'merge_request.squash',
  'ci.skip',
  'ci.variable',
  'ci.input',
  'integrations.skip_ci',
]);
const MERGE_PUSH_OPTIONS = new Set(['merge_request.merge_when_pipeline_succeeds', 'merge_request.auto_merge']);

/**
 * A push option as GitLab reads it (`namespace.key[=value]`, `mr.` standing for `merge_request.`): the merge
 * request and CI options are allowed, merging on success only with `allowMerge`; skipping secret push protection,
 * targeting another project and options GitLab may add later are refused (docs/gitlab.md, "Push options").
 */
function decidePushOption(policy: RunPolicy, option: string): Decision {
  const key = (option.split('=', 1)[0] ?? '').trim().toLowerCase().replace(/^mr\./, 'merge_request.');
  // The description of a merge request opened by a push runs quick actions too (`-o merge_request.description=/merge`).
  if (key === 'merge_request.description') return decideQuickActions(policy, [option.slice(option.indexOf('=') + 1)], 'the push option merge_request.description');
  if (ALLOWED_PUSH_OPTIONS.has(key)) return ALLOW;
  if (MERGE_PUSH_OPTIONS.has(key)) {
    if (policy.allowMerge) return ALLOW;
    return refuse('push.merge_option', `the push option ${quote(key)} refused: merging stays with people; push without it and leave the merge request for review`);
  }
  return refuse('push.option', `the push option ${quote(key)} refused: only merge request (merge_request.create, .target, .title…) and CI options are allowed`);
}

function branchChange(policy: RunPolicy, update: RefUpdate, branch: string, isAncestor: IsAncestor | undefined): BranchChange {
  if (isZeroId(update.oldId)) return 'create';
  if (isZeroId(update.newId)) return 'delete';
  if (!policy.existingBranches.has(branch)) return 'update';
  const answer = isAncestor?.(update.oldId, update.newId);
  return answer === true ? 'update' : answer === false ? 'rewrite' : 'unverified';
}

function decideRefUpdate(policy: RunPolicy, update: RefUpdate, isAncestor: IsAncestor | undefined): Decision {
  if (isZeroId(update.oldId) && isZeroId(update.newId)) return refuse('push.malformed', `the update of ${quote(update.ref)} has zero ids on both sides`);
  if (update.ref.startsWith('refs/heads/')) {
    const branch = update.ref.slice('refs/heads/'.length);
    return decideBranchChange(policy, branch, branchChange(policy, update, branch, isAncestor), 'push');
  }
  if (update.ref.startsWith('refs/tags/')) {
    const tag = quote(update.ref.slice('refs/tags/'.length));
    if (!policy.allowTags) return refuse('push.tag', `pushing the tag ${tag} refused: this run may not push tags; push a branch instead`);
    if (!isZeroId(update.oldId)) return refuse('push.tag_change', `moving or deleting the tag ${tag} refused: a run may only create new tags`);
    return ALLOW;
  }
  return refuse('push.other_ref', `pushing ${quote(update.ref)} refused: a run may push only branches (refs/heads/…)${policy.allowTags ? ' and tags (refs/tags/…)' : ''}`);
}

/**
 * Decides a whole push: refused, with the first rule that refuses, when any command or push option is refused.
 * Whether an update of a branch that existed before the run is a fast-forward comes from `isAncestor`; without an
 * answer such an update is refused (`push.unverified_update`). `updatesNeedingAncestry` lists what to ask.
 */
export function decidePush(
  policy: RunPolicy,
  commands: readonly RefUpdate[],
  options: { isAncestor?: IsAncestor; pushOptions?: readonly string[] } = {},
): Decision {
  for (const update of commands) {
    const decision = decideRefUpdate(policy, update, options.isAncestor);
    if (!decision.allow) return decision;
  }
  for (const option of options.pushOptions ?? []) {
    const decision = decidePushOption(policy, option);
    if (!decision.allow) return decision;
  }
  return ALLOW;
}

/** The updates whose decision depends on ancestry: updates (not creations or deletions) of branches that existed before the run. */
export function updatesNeedingAncestry(policy: RunPolicy, commands: readonly RefUpdate[]): RefUpdate[] {
  return commands.filter(
    (update) =>
      update.ref.startsWith('refs/heads/') &&
      !isZeroId(update.oldId) &&
      !isZeroId(update.newId) &&
      policy.existingBranches.has(update.ref.slice('refs/heads/'.length)),
  );
}

/** `decidePush` for a parsed receive-pack body: a body that is incomplete or malformed is refused as such. */
export function decideReceivePack(policy: RunPolicy, parsed: ReceivePackCommands, options: { isAncestor?: IsAncestor } = {}): Decision {
  if (!parsed.complete) return refuse('push.malformed', 'the push ended before its ref-update commands did');
  if (parsed.error !== null) return refuse('push.malformed', `the push could not be read: ${quote(parsed.error)}`);
  return decidePush(policy, parsed.commands, { isAncestor: options.isAncestor, pushOptions: parsed.pushOptions });
}

/**
 * One request to the GitLab origin, by its kind: REST, GraphQL, smart-HTTP git, or anything else (the web
 * interface, OAuth, LFS), which is refused. A push is decided twice: here by its URL, then by its commands with
 * `decideReceivePack`.
 */
export function decideGitLabRequest(policy: RunPolicy, request: ApiRequest): Decision {
  const kind = classifyRequest(policy, request.path);
  if (kind === 'api') return decideApiRequest(policy, request);
  if (kind === 'git') return decideGitRequest(policy, request);
  if (kind === 'graphql') {
    const method = request.method.toUpperCase();
    if (method !== 'GET' && method !== 'POST') return refuse('graphql.method', `${quote(method)} is not how GraphQL is asked`);
    return decideGraphql(method === 'GET' ? null : request.body, { query: request.query, contentType: request.contentType });
  }
  // The token's own scopes and expiry (`GET /oauth/token/info`, which agents ask before choosing git or the API): a
  // read of what the run holds anyway, whose answer never carries the token.
  if (request.method.toUpperCase() === 'GET' && isTokenInfo(policy, request.path)) return ALLOW;
  return refuse(
    'web.other',
    `${quote(request.method.toUpperCase())} ${quote(request.path.split('?', 1)[0] ?? '')} refused: a run reaches GitLab only through git, the REST API (/api/v4), GraphQL queries and GET /oauth/token/info`,
  );
}

function isTokenInfo(policy: RunPolicy, path: string): boolean {
  const split = splitRequestPath(path, policy.basePath);
  return !('error' in split) && split.segments.join('/') === 'oauth/token/info';
}
