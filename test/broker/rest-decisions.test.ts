import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideApiRequest, type ApiRequest, type Decision, type RunPolicy } from '../../src/broker/policy.ts';
import { runPolicy } from './fixtures.ts';

function verdict(decision: Decision): string {
  return decision.allow ? 'allow' : decision.rule;
}

const plain = runPolicy();
const merges = runPolicy({ allowMerge: true });
const tags = runPolicy({ allowTags: true });
const readsOthers = runPolicy({ readOtherProjects: true });
const explicitMain = runPolicy({ allowedBranch: 'main' });
const subpath = runPolicy({ basePath: '/gitlab' });

const P = '/api/v4/projects/42';
const E = '/api/v4/projects/Group%2FSub%2FApp';
const json = (value: unknown): Pick<ApiRequest, 'body' | 'contentType'> => ({ body: JSON.stringify(value), contentType: 'application/json' });
const form = (value: Record<string, string>): Pick<ApiRequest, 'body' | 'contentType'> => ({
  body: new URLSearchParams(value).toString(),
  contentType: 'application/x-www-form-urlencoded',
});

type Row = [string, RunPolicy, ApiRequest, string];
const rows: Row[] = [
  // reads: as the token allows
  ['read the project', plain, { method: 'GET', path: P }, 'allow'],
  ['read the project by path', plain, { method: 'GET', path: E }, 'allow'],
  ['read a file', plain, { method: 'GET', path: `${P}/repository/files/src%2Fmain.ts/raw`, query: 'ref=main' }, 'allow'],
  ['HEAD a file', plain, { method: 'HEAD', path: `${P}/repository/files/src%2Fmain.ts`, query: 'ref=main' }, 'allow'],
  ['list projects', plain, { method: 'GET', path: '/api/v4/projects', query: 'membership=true' }, 'allow'],
  ['read the user', plain, { method: 'GET', path: '/api/v4/user' }, 'allow'],
  ['inspect the token', plain, { method: 'GET', path: '/api/v4/personal_access_tokens/self' }, 'allow'],
  ['read another project itself', plain, { method: 'GET', path: '/api/v4/projects/7' }, 'allow'],
  ['read a group', plain, { method: 'GET', path: '/api/v4/groups/Group' }, 'allow'],
  ['read merge requests everywhere', plain, { method: 'GET', path: '/api/v4/merge_requests', query: 'scope=created_by_me' }, 'allow'],
  ['search issues everywhere', plain, { method: 'GET', path: '/api/v4/search', query: 'scope=issues&search=x' }, 'allow'],
  // reads of other projects' contents follow readOtherProjects
  ['read another project files', plain, { method: 'GET', path: '/api/v4/projects/7/repository/files/a/raw' }, 'api.read_other_project'],
  ['read another project by path', plain, { method: 'GET', path: '/api/v4/projects/Group%2FOther/repository/tree' }, 'api.read_other_project'],
  ['read another project files (allowed)', readsOthers, { method: 'GET', path: '/api/v4/projects/7/repository/files/a/raw' }, 'allow'],
  ['search code everywhere', plain, { method: 'GET', path: '/api/v4/search', query: 'scope=blobs&search=password' }, 'api.read_other_project'],
  ['search commits in a group', plain, { method: 'GET', path: '/api/v4/groups/5/search', query: 'scope=commits&search=x' }, 'api.read_other_project'],
  ['search code everywhere (allowed)', readsOthers, { method: 'GET', path: '/api/v4/search', query: 'scope=blobs&search=x' }, 'allow'],
  ['search code in the project', plain, { method: 'GET', path: `${P}/search`, query: 'scope=blobs&search=x' }, 'allow'],
  // secrets are never read
  ['read CI variables', plain, { method: 'GET', path: `${P}/variables` }, 'api.secret_read'],
  ['read one CI variable', plain, { method: 'GET', path: `${E}/variables/TOKEN` }, 'api.secret_read'],
  ['read group variables', plain, { method: 'GET', path: '/api/v4/groups/Group/variables' }, 'api.secret_read'],
  ['read instance variables', plain, { method: 'GET', path: '/api/v4/admin/ci/variables' }, 'api.secret_read'],
  ['read deploy tokens', plain, { method: 'GET', path: `${P}/deploy_tokens` }, 'api.secret_read'],
  ['read deploy keys', plain, { method: 'GET', path: '/api/v4/deploy_keys' }, 'api.secret_read'],
  ['read project hooks', plain, { method: 'GET', path: `${P}/hooks` }, 'api.secret_read'],
  ['read system hooks', plain, { method: 'GET', path: '/api/v4/hooks' }, 'api.secret_read'],
  ['read trigger tokens', plain, { method: 'GET', path: `${P}/triggers` }, 'api.secret_read'],
  ['read secure files', plain, { method: 'GET', path: `${P}/secure_files/1/download` }, 'api.secret_read'],
  ['read project access tokens', plain, { method: 'GET', path: `${P}/access_tokens` }, 'api.secret_read'],
  ['list personal access tokens', plain, { method: 'GET', path: '/api/v4/personal_access_tokens' }, 'api.secret_read'],
  ['read another token', plain, { method: 'GET', path: '/api/v4/personal_access_tokens/9' }, 'api.secret_read'],
  ['read a user\'s tokens', plain, { method: 'GET', path: '/api/v4/users/3/personal_access_tokens' }, 'api.secret_read'],
  ['read runners', plain, { method: 'GET', path: '/api/v4/runners/all' }, 'api.secret_read'],
  ['read integrations', plain, { method: 'GET', path: `${P}/integrations/slack` }, 'api.secret_read'],
  ['read application settings', plain, { method: 'GET', path: '/api/v4/application/settings' }, 'api.secret_read'],
  ['read variables with readOtherProjects', readsOthers, { method: 'GET', path: '/api/v4/projects/7/variables' }, 'api.secret_read'],
  // writes: merge requests, issues, notes
  ['open a merge request', plain, { method: 'POST', path: `${P}/merge_requests`, ...json({ source_branch: 'x', target_branch: 'main', title: 't' }) }, 'allow'],
  ['open a merge request by path', plain, { method: 'POST', path: `${E}/merge_requests`, ...form({ source_branch: 'x', target_branch: 'main', title: 't' }) }, 'allow'],
  ['open a merge request, lower-case path', plain, { method: 'POST', path: '/api/v4/projects/group%2fsub%2fapp/merge_requests' }, 'allow'],
  ['open a merge request, id with a leading zero', plain, { method: 'POST', path: '/api/v4/projects/042/merge_requests' }, 'allow'],
  ['open a merge request, trailing slash', plain, { method: 'POST', path: `${P}/merge_requests/` }, 'allow'],
  ['open a merge request into another project', plain, { method: 'POST', path: `${P}/merge_requests`, ...json({ source_branch: 'x', target_branch: 'main', title: 't', target_project_id: 7 }) }, 'api.write_other_project'],
  ['open a merge request into itself by id', plain, { method: 'POST', path: `${P}/merge_requests`, ...json({ target_project_id: 42 }) }, 'allow'],
  ['update a merge request', plain, { method: 'PUT', path: `${P}/merge_requests/3`, ...json({ title: 'x' }) }, 'allow'],
  ['delete a merge request', plain, { method: 'DELETE', path: `${P}/merge_requests/3` }, 'api.not_allowed'],
  ['comment on a merge request', plain, { method: 'POST', path: `${P}/merge_requests/3/notes`, ...json({ body: 'hi' }) }, 'allow'],
  ['edit a merge request comment', plain, { method: 'PUT', path: `${P}/merge_requests/3/notes/9` }, 'allow'],
  ['reply in a discussion', plain, { method: 'POST', path: `${P}/merge_requests/3/discussions/ab12/notes` }, 'allow'],
  ['award an emoji on a note', plain, { method: 'POST', path: `${P}/merge_requests/3/notes/9/award_emoji` }, 'allow'],
  ['publish draft notes', plain, { method: 'POST', path: `${P}/merge_requests/3/draft_notes/bulk_publish` }, 'allow'],
  ['file an issue', plain, { method: 'POST', path: `${P}/issues`, ...json({ title: 'x' }) }, 'allow'],
  ['close an issue', plain, { method: 'PUT', path: `${E}/issues/5`, ...form({ state_event: 'close' }) }, 'allow'],
  ['comment on an issue', plain, { method: 'POST', path: `${P}/issues/5/notes` }, 'allow'],
  ['move an issue to another project', plain, { method: 'POST', path: `${P}/issues/5/move`, ...json({ to_project_id: 7 }) }, 'api.not_allowed'],
  ['link an issue', plain, { method: 'POST', path: `${P}/issues/5/links` }, 'api.not_allowed'],
  ['delete an issue', plain, { method: 'DELETE', path: `${P}/issues/5` }, 'api.not_allowed'],
  ['PATCH an issue', plain, { method: 'PATCH', path: `${P}/issues/5` }, 'api.not_allowed'],
  ['merge_requests/new', plain, { method: 'PUT', path: `${P}/merge_requests/new` }, 'api.not_allowed'],
  ['merge_requests/3.json', plain, { method: 'PUT', path: `${P}/merge_requests/3.json` }, 'api.not_allowed'],
  ['render markdown', plain, { method: 'POST', path: '/api/v4/markdown', ...json({ text: '*x*' }) }, 'allow'],
  ['lint CI configuration', plain, { method: 'POST', path: `${P}/ci/lint`, ...json({ content: 'a' }) }, 'allow'],
  // merging and approving only when the operator allows it
  ['merge a merge request', plain, { method: 'PUT', path: `${P}/merge_requests/3/merge` }, 'api.merge'],
  ['merge a merge request (.json)', plain, { method: 'PUT', path: `${P}/merge_requests/3/merge.json` }, 'api.not_allowed'],
  ['auto-merge a merge request', plain, { method: 'PUT', path: `${P}/merge_requests/3/merge`, ...json({ auto_merge: true }) }, 'api.merge'],
  ['merge when pipeline succeeds (old endpoint)', plain, { method: 'POST', path: `${P}/merge_requests/3/merge_when_pipeline_succeeds` }, 'api.merge'],
  ['cancel auto-merge', plain, { method: 'POST', path: `${P}/merge_requests/3/cancel_merge_when_pipeline_succeeds` }, 'allow'],
  ['approve', plain, { method: 'POST', path: `${P}/merge_requests/3/approve` }, 'api.merge'],
  ['unapprove', plain, { method: 'POST', path: `${P}/merge_requests/3/unapprove` }, 'api.merge'],
  ['reset approvals', plain, { method: 'PUT', path: `${P}/merge_requests/3/reset_approvals` }, 'api.merge'],
  ['merge (allowed)', merges, { method: 'PUT', path: `${P}/merge_requests/3/merge` }, 'allow'],
  ['approve (allowed)', merges, { method: 'POST', path: `${P}/merge_requests/3/approve` }, 'allow'],
  ['merge another project\'s merge request (allowed to merge)', merges, { method: 'PUT', path: '/api/v4/projects/7/merge_requests/3/merge' }, 'api.write_other_project'],
  ['rebase on the server', merges, { method: 'PUT', path: `${P}/merge_requests/3/rebase` }, 'api.rebase'],
  ['change approval rules', merges, { method: 'POST', path: `${P}/merge_requests/3/approval_rules` }, 'api.not_allowed'],
  // branches under the push rules
  ['create a branch', plain, { method: 'POST', path: `${P}/repository/branches`, query: 'branch=feature/x&ref=main' }, 'allow'],
  ['create a protected branch', plain, { method: 'POST', path: `${P}/repository/branches`, query: 'branch=release/9&ref=main' }, 'push.protected_branch'],
  ['create a branch, name in a JSON body', plain, { method: 'POST', path: `${P}/repository/branches`, ...json({ branch: 'stable', ref: 'main' }) }, 'push.protected_branch'],
  ['create a branch without a name', plain, { method: 'POST', path: `${P}/repository/branches`, query: 'ref=main' }, 'api.body'],
  ['delete a branch the run created', plain, { method: 'DELETE', path: `${P}/repository/branches/feature%2Fx` }, 'allow'],
  ['delete a pre-existing branch', plain, { method: 'DELETE', path: `${P}/repository/branches/feature%2Fold` }, 'push.delete_existing'],
  ['delete the default branch', plain, { method: 'DELETE', path: `${E}/repository/branches/main` }, 'push.default_branch'],
  ['delete develop.json (read as develop)', plain, { method: 'DELETE', path: `${P}/repository/branches/develop.json` }, 'push.delete_existing'],
  ['delete a branch by an unencoded path', plain, { method: 'DELETE', path: `${P}/repository/branches/feature/old` }, 'api.not_allowed'],
  ['delete merged branches', plain, { method: 'DELETE', path: `${P}/repository/merged_branches` }, 'push.delete_existing'],
  ['protect a branch (old endpoint)', plain, { method: 'PUT', path: `${P}/repository/branches/x/protect` }, 'api.not_allowed'],
  // commits and files under the push rules
  ['commit to a new branch', plain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: 'feature/x', start_branch: 'main', commit_message: 'm', actions: [] }) }, 'allow'],
  ['commit to the default branch', plain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: 'main', commit_message: 'm', actions: [] }) }, 'push.default_branch'],
  ['commit to the default branch, form body', plain, { method: 'POST', path: `${P}/repository/commits`, ...form({ branch: 'main', commit_message: 'm' }) }, 'push.default_branch'],
  ['commit to main via the query string, feature in the body', plain, { method: 'POST', path: `${P}/repository/commits`, query: 'branch=main', ...json({ branch: 'feature/x' }) }, 'push.default_branch'],
  ['commit with branch twice in a form', plain, { method: 'POST', path: `${P}/repository/commits`, body: 'branch=feature%2Fx&branch=main', contentType: 'application/x-www-form-urlencoded' }, 'push.default_branch'],
  ['commit with a non-string branch', plain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: ['main'] }) }, 'api.body'],
  ['commit without a branch', plain, { method: 'POST', path: `${P}/repository/commits`, ...json({ start_branch: 'main' }) }, 'api.body'],
  ['commit with a broken JSON body', plain, { method: 'POST', path: `${P}/repository/commits`, body: '{"branch":', contentType: 'application/json' }, 'api.body'],
  ['commit with a JSON array body', plain, { method: 'POST', path: `${P}/repository/commits`, body: '[]', contentType: 'application/json' }, 'api.body'],
  ['commit with a multipart body', plain, { method: 'POST', path: `${P}/repository/commits`, body: '--b\r\n', contentType: 'multipart/form-data; boundary=b' }, 'api.body'],
  ['commit with JSON and no content type', plain, { method: 'POST', path: `${P}/repository/commits`, body: '{"branch":"main"}' }, 'push.default_branch'],
  ['commit with JSON as bytes', plain, { method: 'POST', path: `${P}/repository/commits`, body: new TextEncoder().encode('{"branch":"stable"}'), contentType: 'application/json; charset=utf-8' }, 'push.protected_branch'],
  ['commit on a pre-existing branch', plain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: 'develop' }) }, 'allow'],
  ['force a commit over a pre-existing branch', plain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: 'develop', start_branch: 'main', force: true }) }, 'push.force_existing'],
  ['force a commit over a pre-existing branch (form)', plain, { method: 'POST', path: `${P}/repository/commits`, ...form({ branch: 'develop', force: 'true' }) }, 'push.force_existing'],
  ['force: false on a pre-existing branch', plain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: 'develop', force: false }) }, 'allow'],
  ['force a commit over the run\'s own branch', plain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: 'feature/x', force: true }) }, 'allow'],
  ['commit to main when the run was started with main', explicitMain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: 'main' }) }, 'allow'],
  ['force over main when the run was started with main', explicitMain, { method: 'POST', path: `${P}/repository/commits`, ...json({ branch: 'main', force: 1 }) }, 'push.force_existing'],
  ['cherry-pick onto the default branch', plain, { method: 'POST', path: `${P}/repository/commits/abc123/cherry_pick`, ...json({ branch: 'main' }) }, 'push.default_branch'],
  ['revert on a new branch', plain, { method: 'POST', path: `${P}/repository/commits/abc123/revert`, ...json({ branch: 'feature/x' }) }, 'allow'],
  ['comment on a commit', plain, { method: 'POST', path: `${P}/repository/commits/abc123/comments`, ...json({ note: 'x' }) }, 'allow'],
  ['create a file on a new branch', plain, { method: 'POST', path: `${P}/repository/files/src%2Fa.ts`, ...json({ branch: 'feature/x', start_branch: 'main', content: 'x', commit_message: 'm' }) }, 'allow'],
  ['update a file on the default branch', plain, { method: 'PUT', path: `${P}/repository/files/README.md`, ...json({ branch: 'main', content: 'x', commit_message: 'm' }) }, 'push.default_branch'],
  ['delete a file on a protected branch', plain, { method: 'DELETE', path: `${P}/repository/files/README.md`, query: 'branch=release%2F1.0&commit_message=m' }, 'push.protected_branch'],
  ['update a file with an unencoded path', plain, { method: 'PUT', path: `${P}/repository/files/src/a.ts`, ...json({ branch: 'feature/x' }) }, 'api.not_allowed'],
  // tags
  ['create a tag', plain, { method: 'POST', path: `${P}/repository/tags`, query: 'tag_name=v1&ref=main' }, 'push.tag'],
  ['create a tag (allowed)', tags, { method: 'POST', path: `${P}/repository/tags`, query: 'tag_name=v1&ref=main' }, 'allow'],
  ['delete a tag (tags allowed)', tags, { method: 'DELETE', path: `${P}/repository/tags/v1` }, 'push.tag_change'],
  // writes elsewhere
  ['write to another project', plain, { method: 'POST', path: '/api/v4/projects/7/issues' }, 'api.write_other_project'],
  ['write to another project by path', plain, { method: 'POST', path: '/api/v4/projects/Group%2FSub%2FApp2/merge_requests' }, 'api.write_other_project'],
  ['write to another project, readOtherProjects', readsOthers, { method: 'POST', path: '/api/v4/projects/7/issues' }, 'api.write_other_project'],
  ['write through ..', plain, { method: 'POST', path: `${P}/../7/issues` }, 'api.path'],
  ['write through %2e%2e', plain, { method: 'POST', path: `${P}/%2e%2e/7/issues` }, 'api.path'],
  ['write through an encoded ../ inside the id', plain, { method: 'POST', path: '/api/v4/projects/Group%2FSub%2FApp%2F..%2F..%2FOther/issues' }, 'api.write_other_project'],
  ['write with a double-encoded id', plain, { method: 'POST', path: '/api/v4/projects/Group%252FSub%252FApp/issues' }, 'api.write_other_project'],
  ['write with //', plain, { method: 'POST', path: '/api/v4/projects//42/issues' }, 'api.path'],
  ['write with a bad escape', plain, { method: 'POST', path: `${P}/issues%` }, 'api.path'],
  ['write with the id as 42.json', plain, { method: 'POST', path: '/api/v4/projects/42.json/issues' }, 'api.write_other_project'],
  ['create a personal access token', plain, { method: 'POST', path: '/api/v4/users/3/personal_access_tokens', ...json({ name: 'x', scopes: ['api'] }) }, 'api.user'],
  ['create a token for oneself', plain, { method: 'POST', path: '/api/v4/user/personal_access_tokens', ...json({ name: 'x', scopes: ['api'] }) }, 'api.user'],
  ['rotate the token', plain, { method: 'POST', path: '/api/v4/personal_access_tokens/self/rotate' }, 'api.tokens'],
  ['revoke the token', plain, { method: 'DELETE', path: '/api/v4/personal_access_tokens/self' }, 'api.tokens'],
  ['create a project access token', plain, { method: 'POST', path: `${P}/access_tokens` }, 'api.tokens'],
  ['create a pipeline trigger', plain, { method: 'POST', path: `${P}/triggers` }, 'api.tokens'],
  ['add a member', plain, { method: 'POST', path: `${P}/members`, ...json({ user_id: 9, access_level: 50 }) }, 'api.members'],
  ['invite someone', plain, { method: 'POST', path: `${P}/invitations` }, 'api.members'],
  ['add a group member', plain, { method: 'POST', path: '/api/v4/groups/5/members' }, 'api.groups'],
  ['set a CI variable', plain, { method: 'POST', path: `${P}/variables`, ...json({ key: 'A', value: 'b' }) }, 'api.variables'],
  ['add a webhook', plain, { method: 'POST', path: `${P}/hooks`, ...json({ url: 'https://evil.example' }) }, 'api.hooks'],
  ['add a system hook', plain, { method: 'POST', path: '/api/v4/hooks' }, 'api.hooks'],
  ['add a deploy key', plain, { method: 'POST', path: `${P}/deploy_keys` }, 'api.deploy_keys'],
  ['create a deploy token', plain, { method: 'POST', path: `${P}/deploy_tokens` }, 'api.deploy_keys'],
  ['register a runner', plain, { method: 'POST', path: '/api/v4/user/runners' }, 'api.user'],
  ['register a runner (old)', plain, { method: 'POST', path: '/api/v4/runners' }, 'api.runners'],
  ['enable a runner on the project', plain, { method: 'POST', path: `${P}/runners` }, 'api.runners'],
  ['change project settings', plain, { method: 'PUT', path: P, ...json({ visibility: 'public' }) }, 'api.project_settings'],
  ['delete the project', plain, { method: 'DELETE', path: E }, 'api.project_settings'],
  ['unprotect a branch', plain, { method: 'DELETE', path: `${P}/protected_branches/main` }, 'api.project_settings'],
  ['protect a branch', plain, { method: 'POST', path: `${P}/protected_branches` }, 'api.project_settings'],
  ['change push rules', plain, { method: 'PUT', path: `${P}/push_rule` }, 'api.project_settings'],
  ['share the project', plain, { method: 'POST', path: `${P}/share` }, 'api.project_settings'],
  ['fork the project', plain, { method: 'POST', path: `${P}/fork` }, 'api.project_settings'],
  ['transfer the project', plain, { method: 'PUT', path: `${P}/transfer` }, 'api.project_settings'],
  ['set a commit status', plain, { method: 'POST', path: `${P}/statuses/abc123`, ...json({ state: 'success' }) }, 'api.not_allowed'],
  ['run a pipeline', plain, { method: 'POST', path: `${P}/pipeline`, ...json({ ref: 'main' }) }, 'api.not_allowed'],
  ['create a label', plain, { method: 'POST', path: `${P}/labels` }, 'api.not_allowed'],
  ['create a project', plain, { method: 'POST', path: '/api/v4/projects' }, 'api.create_project'],
  ['block a user (admin)', plain, { method: 'POST', path: '/api/v4/users/3/block' }, 'api.user'],
  ['change application settings', plain, { method: 'PUT', path: '/api/v4/application/settings' }, 'api.admin'],
  ['admin endpoint', plain, { method: 'POST', path: '/api/v4/admin/ci/variables' }, 'api.admin'],
  ['add an SSH key', plain, { method: 'POST', path: '/api/v4/user/keys' }, 'api.user'],
  ['create a snippet', plain, { method: 'POST', path: '/api/v4/snippets' }, 'api.write_outside_project'],
  ['OPTIONS', plain, { method: 'OPTIONS', path: P }, 'api.method'],
  ['not the v4 API', plain, { method: 'GET', path: '/api/v3/projects' }, 'api.path'],
  // a subpath install
  ['under the subpath', subpath, { method: 'POST', path: '/gitlab/api/v4/projects/42/issues' }, 'allow'],
  ['outside the subpath', subpath, { method: 'POST', path: '/api/v4/projects/42/issues' }, 'api.path'],
];
for (const [name, policy, request, expected] of rows) {
  test(`api: ${name} (${request.method} ${request.path}) → ${expected}`, () => assert.equal(verdict(decideApiRequest(policy, request)), expected));
}

test('a refused write says which rule refused it and what a run may write', () => {
  const decision = decideApiRequest(plain, { method: 'POST', path: `${P}/members` });
  assert.ok(!decision.allow);
  assert.equal(
    decision.message,
    "forgelink policy (api.members): POST /projects/42/members refused: project members stay with the project's maintainers; a run may write only its own project's merge requests, issues, notes, branches, commits and files",
  );
});
