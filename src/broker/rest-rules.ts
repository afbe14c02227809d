/**
 * The REST rules (`/api/v4`): reads as the token allows, except endpoints that hand out secrets or other projects'
 * contents when the run may not read them; writes only to the run's project's merge requests, issues, notes,
 * branches, commits and files, those that write to a branch under the push rules, and merging only when the
 * operator allows it (docs/security.md, "Run policy"). Whatever is not listed is refused, so an endpoint GitLab adds
 * later is refused until someone decides otherwise.
 */
import { ALLOW, decideBranchChange, isRunProject, quote, refuse, type BranchChange, type BranchVia, type Decision, type RunPolicy } from './decision.ts';
import { paramValues, splitRequestPath } from './paths.ts';
import { decideQuickActions } from './quick-actions.ts';
import { asksForMethodOverride, isFalse, requestFields, type Fields, type Headers, type RequestBody } from './request-fields.ts';

export type ApiRequest = {
  method: string;
  /** The raw request path, percent-encoding as sent (`/api/v4/projects/group%2Fapp/issues`). */
  path: string;
  query?: string | URLSearchParams;
  body?: RequestBody;
  /** The request's Content-Type: decides how the body's fields are read. */
  contentType?: string;
  /** The request's headers (only method-override headers are looked at). */
  headers?: Headers;
};

const READ_METHODS = new Set(['GET', 'HEAD']);
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Project sub-resources whose reads hand out secrets (CI variables, tokens, hook URLs, secure files…). */
const PROJECT_SECRETS = new Set([
  'variables',
  'deploy_tokens',
  'deploy_keys',
  'hooks',
  'triggers',
  'secure_files',
  'access_tokens',
  'runners',
  'integrations',
  'services',
  'clusters',
  'cluster_agents',
  'remote_mirrors',
]);
const GROUP_SECRETS = new Set(['variables', 'deploy_tokens', 'hooks', 'access_tokens', 'runners', 'integrations', 'clusters', 'service_accounts']);

/** Top-level families: each refused for writes with its own rule; the starred ones for reads too. */
const TOP_LEVEL: Record<string, { rule: string; what: string; secretRead?: boolean }> = {
  personal_access_tokens: { rule: 'api.tokens', what: 'creating, rotating or revoking access tokens', secretRead: true },
  user: { rule: 'api.user', what: "changing the account's settings, keys, emails, runners or tokens" },
  users: { rule: 'api.user', what: 'changing users or their tokens' },
  admin: { rule: 'api.admin', what: 'instance administration', secretRead: true },
  application: { rule: 'api.admin', what: 'instance settings', secretRead: true },
  applications: { rule: 'api.admin', what: 'OAuth applications', secretRead: true },
  runners: { rule: 'api.runners', what: 'registering or changing runners', secretRead: true },
  deploy_keys: { rule: 'api.deploy_keys', what: 'deploy keys', secretRead: true },
  deploy_tokens: { rule: 'api.deploy_keys', what: 'deploy tokens', secretRead: true },
  hooks: { rule: 'api.hooks', what: 'system hooks', secretRead: true },
  groups: { rule: 'api.groups', what: "changing groups, their members, variables or settings" },
  projects: { rule: 'api.create_project', what: 'creating or importing projects' },
};

const PROJECT_FAMILIES: Record<string, { rule: string; what: string }> = {
  variables: { rule: 'api.variables', what: 'CI/CD variables' },
  triggers: { rule: 'api.tokens', what: 'pipeline trigger tokens' },
  access_tokens: { rule: 'api.tokens', what: 'project access tokens' },
  members: { rule: 'api.members', what: 'project members' },
  invitations: { rule: 'api.members', what: 'invitations' },
  access_requests: { rule: 'api.members', what: 'access requests' },
  hooks: { rule: 'api.hooks', what: 'webhooks' },
  deploy_keys: { rule: 'api.deploy_keys', what: 'deploy keys' },
  deploy_tokens: { rule: 'api.deploy_keys', what: 'deploy tokens' },
  runners: { rule: 'api.runners', what: 'runners' },
  secure_files: { rule: 'api.variables', what: 'secure files' },
  protected_branches: { rule: 'api.project_settings', what: 'protected branches' },
  protected_tags: { rule: 'api.project_settings', what: 'protected tags' },
  protected_environments: { rule: 'api.project_settings', what: 'protected environments' },
  push_rule: { rule: 'api.project_settings', what: 'push rules' },
  approval_rules: { rule: 'api.project_settings', what: 'approval rules' },
  approvals: { rule: 'api.project_settings', what: 'approval settings' },
  integrations: { rule: 'api.project_settings', what: 'integrations' },
  services: { rule: 'api.project_settings', what: 'integrations' },
  remote_mirrors: { rule: 'api.project_settings', what: 'mirrors' },
  mirror: { rule: 'api.project_settings', what: 'mirrors' },
  share: { rule: 'api.project_settings', what: 'sharing with groups' },
  fork: { rule: 'api.project_settings', what: 'forking' },
  transfer: { rule: 'api.project_settings', what: 'transferring the project' },
  archive: { rule: 'api.project_settings', what: 'archiving the project' },
  unarchive: { rule: 'api.project_settings', what: 'unarchiving the project' },
  job_token_scope: { rule: 'api.project_settings', what: 'the CI job token scope' },
};

/** Search scopes that return code or commits: other projects' contents. */
const CONTENT_SEARCH_SCOPES = new Set(['blobs', 'wiki_blobs', 'commits', 'notes']);

const ALLOWED_WRITES =
  "a run may write only its own project's merge requests, issues, notes, branches, commits and files";

/** Decides one REST request under `/api/v4` (see the file's comment). */
export function decideApiRequest(policy: RunPolicy, request: ApiRequest): Decision {
  const split = splitRequestPath(request.path, policy.basePath);
  if ('error' in split) return refuse('api.path', `${split.error}; address the endpoint as GitLab documents it`);
  const [api, version, ...rest] = split.segments;
  if (api !== 'api' || version !== 'v4') return refuse('api.path', 'only the REST API under /api/v4 is brokered');
  const method = request.method.toUpperCase();
  if (READ_METHODS.has(method)) return decideRead(policy, rest, request);
  if (!WRITE_METHODS.has(method)) return refuse('api.method', `${quote(method)} is not a method the REST API uses`);
  if (method === 'POST' && asksForMethodOverride(request.query, request.body, request.contentType, request.headers)) {
    return refuse('api.method', 'a POST that asks to be another method (_method, X-HTTP-Method-Override) is refused; send the method itself');
  }
  return decideWrite(policy, method, rest, request);
}

function decideRead(policy: RunPolicy, rest: string[], request: ApiRequest): Decision {
  const [family = '', id, sub] = rest;
  const where = `GET /${rest.map(quote).join('/')}`;
  const secret = refuse('api.secret_read', `${where} refused: it hands out secrets (CI variables, tokens, keys, hook or mirror URLs); a run does not read them`);
  if (family === 'projects' && id !== undefined) {
    if (sub !== undefined && PROJECT_SECRETS.has(sub)) return secret;
    if (sub !== undefined && !isRunProject(policy, id) && !policy.readOtherProjects) {
      return refuse('api.read_other_project', `${where} refused: this run may read only ${quote(policy.projectPath)}'s contents (reading other projects is not allowed)`);
    }
    return ALLOW;
  }
  if (family === 'groups' && sub !== undefined && GROUP_SECRETS.has(sub)) return secret;
  if (family === 'personal_access_tokens' && id === 'self' && sub === undefined) return ALLOW;
  if (TOP_LEVEL[family]?.secretRead === true) return secret;
  if (family === 'users' && (sub === 'personal_access_tokens' || sub === 'impersonation_tokens')) return secret;
  if (!policy.readOtherProjects && ((family === 'search' && id === undefined) || (family === 'groups' && sub === 'search'))) {
    const scopes = paramValues(request.query, 'scope');
    if (scopes.some((scope) => CONTENT_SEARCH_SCOPES.has(scope))) {
      return refuse('api.read_other_project', `${where} refused: searching code, commits or notes beyond ${quote(policy.projectPath)} reads other projects; search within the project instead`);
    }
  }
  return ALLOW;
}

function decideWrite(policy: RunPolicy, method: string, rest: string[], request: ApiRequest): Decision {
  const [family = '', id, resource, ...sub] = rest;
  const where = `${method} /${rest.map(quote).join('/')}`;
  if (method === 'POST' && family === 'markdown' && rest.length === 1) return ALLOW; // renders text, writes nothing
  if (family !== 'projects' || id === undefined) {
    const known = TOP_LEVEL[family];
    if (known !== undefined) return refuse(known.rule, `${where} refused: ${known.what} is not something a run may change; ${ALLOWED_WRITES}`);
    return refuse('api.write_outside_project', `${where} refused: ${ALLOWED_WRITES}`);
  }
  if (!isRunProject(policy, id)) {
    return refuse('api.write_other_project', `${where} refused: this run may write only to ${quote(policy.projectPath)} (id ${policy.projectId})`);
  }
  if (resource === undefined) {
    return refuse('api.project_settings', `${where} refused: changing or deleting the project itself is not something a run may do; ${ALLOWED_WRITES}`);
  }
  const context: WriteContext = { policy, method, where, request };
  if (resource === 'merge_requests') return withQuickActions(context, decideMergeRequestWrite(context, sub));
  if (resource === 'issues') return withQuickActions(context, decideIssueWrite(context, sub));
  if (resource === 'repository') return decideRepositoryWrite(context, sub);
  if (resource === 'ci' && sub.length === 1 && sub[0] === 'lint' && method === 'POST') return ALLOW; // validates, writes nothing
  const settings = PROJECT_FAMILIES[resource];
  if (settings !== undefined) return refuse(settings.rule, `${where} refused: ${settings.what} stay with the project's maintainers; ${ALLOWED_WRITES}`);
  return notAllowed(context);
}

type WriteContext = { policy: RunPolicy; method: string; where: string; request: ApiRequest };

/** The texts GitLab runs quick actions from: a note's `body` (or `note`), an issue's or merge request's `description`. */
const QUICK_ACTION_FIELDS = ['body', 'note', 'description'];

/** An allowed write that carries text is checked for quick actions (quick-actions.ts); a DELETE carries none. */
function withQuickActions(context: WriteContext, decision: Decision): Decision {
  if (!decision.allow || context.method === 'DELETE') return decision;
  const { request, where } = context;
  const fields = requestFields(request.query, request.body, request.contentType);
  if ('error' in fields) return refuse('api.body', `${where} refused: ${fields.error}, so its quick actions cannot be checked`);
  const texts: string[] = [];
  for (const name of QUICK_ACTION_FIELDS) {
    const values = fields.values(name);
    if (values === 'invalid') return refuse('api.body', `${where} refused: the ${name} field is not a string`);
    texts.push(...values);
  }
  return decideQuickActions(context.policy, texts, where);
}

function notAllowed({ where }: WriteContext): Decision {
  return refuse('api.not_allowed', `${where} refused: it is not among the writes a run may make; ${ALLOWED_WRITES}`);
}

const ISSUE_OR_MR_CHILDREN = new Set(['notes', 'discussions', 'award_emoji', 'subscribe', 'unsubscribe', 'todo', 'time_estimate', 'reset_time_estimate', 'add_spent_time', 'reset_spent_time']);
const MERGE_ACTIONS = new Set(['merge', 'approve', 'unapprove', 'reset_approvals', 'merge_when_pipeline_succeeds']);

function isIid(value: string | undefined): boolean {
  return value !== undefined && /^\d+$/.test(value);
}

function decideMergeRequestWrite(context: WriteContext, sub: string[]): Decision {
  const { policy, method, where, request } = context;
  const [iid, action] = sub;
  if (iid === undefined) {
    if (method !== 'POST') return notAllowed(context);
    const fields = requestFields(request.query, request.body, request.contentType);
    if ('error' in fields) return refuse('api.body', `${where} refused: ${fields.error}`);
    const targets = fields.values('target_project_id');
    if (targets === 'invalid' || targets.some((target) => !isRunProject(policy, target.trim()))) {
      return refuse('api.write_other_project', `${where} refused: a run opens merge requests only into ${quote(policy.projectPath)}`);
    }
    return ALLOW;
  }
  if (!isIid(iid)) return notAllowed(context);
  if (action === undefined) return method === 'PUT' ? ALLOW : notAllowed(context);
  if (action === 'cancel_merge_when_pipeline_succeeds' && method === 'POST') return ALLOW;
  if (MERGE_ACTIONS.has(action)) {
    if (policy.allowMerge) return ALLOW;
    const what = action === 'merge' || action === 'merge_when_pipeline_succeeds' ? 'merging a merge request (or setting it to merge automatically)' : 'approving or resetting approvals';
    return refuse('api.merge', `${where} refused: ${what} stays with people; leave the merge request for review`);
  }
  if (action === 'rebase') {
    return refuse('api.rebase', `${where} refused: GitLab would rewrite the source branch on the server; rebase locally and push the result to a new branch`);
  }
  if (action === 'draft_notes' || ISSUE_OR_MR_CHILDREN.has(action)) return ALLOW;
  return notAllowed(context);
}

function decideIssueWrite(context: WriteContext, sub: string[]): Decision {
  const { method } = context;
  const [iid, action] = sub;
  if (iid === undefined) return method === 'POST' ? ALLOW : notAllowed(context);
  if (!isIid(iid)) return notAllowed(context);
  if (action === undefined) return method === 'PUT' ? ALLOW : notAllowed(context);
  if (ISSUE_OR_MR_CHILDREN.has(action)) return ALLOW;
  return notAllowed(context);
}

/**
 * The branch a REST write targets must pass the push rules. GitLab (Grape) may read a trailing `.json` in a path
 * segment as the response format, so a branch named in the path is judged with and without it.
 */
function decideNamedBranch(context: WriteContext, branch: string, change: BranchChange, via: BranchVia): Decision {
  const first = decideBranchChange(context.policy, branch, change, via);
  if (!first.allow || !branch.endsWith('.json')) return first;
  return decideBranchChange(context.policy, branch.slice(0, -'.json'.length), change, via);
}

/** Reads the `branch` field (every copy of it) and judges each under the push rules. */
function decideBranchField(context: WriteContext, fields: Fields, change: (branch: string) => BranchChange, via: BranchVia): Decision {
  const { where } = context;
  if ('error' in fields) return refuse('api.body', `${where} refused: ${fields.error}`);
  const branches = fields.values('branch');
  if (branches === 'invalid') return refuse('api.body', `${where} refused: the branch field is not a string`);
  if (branches.length === 0) return refuse('api.body', `${where} refused: it names no branch field, so forgelink cannot check which branch it writes to`);
  for (const branch of branches) {
    const decision = decideBranchChange(context.policy, branch, change(branch), via);
    if (!decision.allow) return decision;
  }
  return ALLOW;
}

function decideRepositoryWrite(context: WriteContext, sub: string[]): Decision {
  const { policy, method, where, request } = context;
  const fields = (): Fields => requestFields(request.query, request.body, request.contentType);
  const [kind, name, action] = sub;
  if (kind === 'branches') {
    if (name === undefined && method === 'POST') return decideBranchField(context, fields(), () => 'create', (branch) => `creating the branch ${branch} through the API`);
    if (name !== undefined && sub.length === 2 && method === 'DELETE') return decideNamedBranch(context, name, 'delete', (branch) => `deleting the branch ${branch} through the API`);
    return notAllowed(context);
  }
  if (kind === 'merged_branches') {
    return refuse('push.delete_existing', `${where} refused: it deletes every merged branch, including ones that existed before this run; delete the run's own branches one by one`);
  }
  if (kind === 'commits') {
    if (name === undefined && method === 'POST') {
      const read = fields();
      if ('error' in read) return refuse('api.body', `${where} refused: ${read.error}`);
      const force = read.values('force');
      const forced = force === 'invalid' || force.some((value) => !isFalse(value));
      return decideBranchField(
        context,
        read,
        (branch) => (forced && policy.existingBranches.has(branch) ? 'rewrite' : 'update'),
        'a commit through the commits API',
      );
    }
    if (name !== undefined && sub.length === 3 && method === 'POST' && (action === 'cherry_pick' || action === 'revert')) {
      return decideBranchField(context, fields(), () => 'update', `a ${action === 'revert' ? 'revert' : 'cherry-pick'} through the commits API`);
    }
    if (name !== undefined && sub.length === 3 && method === 'POST' && (action === 'comments' || action === 'discussions')) return withQuickActions(context, ALLOW);
    return notAllowed(context);
  }
  if (kind === 'files' && name !== undefined && sub.length === 2 && (method === 'POST' || method === 'PUT' || method === 'DELETE')) {
    return decideBranchField(context, fields(), () => 'update', 'a commit through the files API');
  }
  if (kind === 'tags') {
    if (!policy.allowTags) return refuse('push.tag', `${where} refused: this run may not create or delete tags`);
    if (name === undefined && method === 'POST') return ALLOW;
    return refuse('push.tag_change', `${where} refused: a run may only create new tags`);
  }
  return notAllowed(context);
}
