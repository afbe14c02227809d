import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyRequest, decideGitLabRequest, decideGitRequest } from '../../src/broker/policy.ts';
import { runPolicy, verdict } from './fixtures.ts';

const own = runPolicy();
const readsOthers = runPolicy({ readOtherProjects: true });
const subpath = runPolicy({ basePath: '/gitlab/' });

for (const [policy, method, path, query, expected] of [
  // the run's project: fetch and push, with or without .git, any case, encoded
  [own, 'GET', '/Group/Sub/App.git/info/refs', 'service=git-upload-pack', 'allow'],
  [own, 'POST', '/Group/Sub/App.git/git-upload-pack', '', 'allow'],
  [own, 'GET', '/Group/Sub/App.git/info/refs', '?service=git-receive-pack', 'allow'],
  [own, 'POST', '/Group/Sub/App.git/git-receive-pack', '', 'allow'],
  [own, 'GET', '/group/sub/app/info/refs', 'service=git-receive-pack', 'allow'],
  [own, 'POST', '/GROUP/SUB/APP.git/git-receive-pack', '', 'allow'],
  [own, 'POST', '/Group/Sub/%41pp.git/git-receive-pack', '', 'allow'],
  [own, 'POST', '/Group%2FSub%2FApp.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/Group/Sub/App.git/git-receive-pack/', '', 'allow'],
  [own, 'POST', '/Group/Sub/App.wiki.git/git-upload-pack', '', 'allow'],
  // other projects: read only with readOtherProjects, never push
  [own, 'GET', '/Group/Other.git/info/refs', 'service=git-upload-pack', 'git.read_other_project'],
  [own, 'POST', '/Group/Other.git/git-upload-pack', '', 'git.read_other_project'],
  [readsOthers, 'POST', '/Group/Other.git/git-upload-pack', '', 'allow'],
  [readsOthers, 'GET', '/Group/Other.git/info/refs', 'service=git-receive-pack', 'git.push_other_project'],
  [readsOthers, 'POST', '/Group/Other.git/git-receive-pack', '', 'git.push_other_project'],
  [own, 'POST', '/Group/Sub/App2.git/git-receive-pack', '', 'git.push_other_project'],
  [own, 'POST', '/Group/Sub/App/Extra.git/git-receive-pack', '', 'git.push_other_project'],
  [own, 'POST', '/Group/App.git/git-receive-pack', '', 'git.push_other_project'],
  [own, 'POST', '/Group/Sub/App.GIT/git-receive-pack', '', 'git.push_other_project'],
  // the project's other repositories and snippets
  [own, 'POST', '/Group/Sub/App.wiki.git/git-receive-pack', '', 'git.push_other_repository'],
  [own, 'POST', '/Group/Sub/App.design.git/git-receive-pack', '', 'git.push_other_repository'],
  [own, 'POST', '/snippets/12.git/git-upload-pack', '', 'git.read_other_project'],
  [readsOthers, 'POST', '/Group/Sub/App/-/snippets/3.git/git-receive-pack', '', 'git.push_other_project'],
  [own, 'POST', '/Group/Sub/App/-/snippets/3.git/git-upload-pack', '', 'git.read_other_project'],
  [own, 'POST', '/Group/Sub/App/-/tree.git/git-upload-pack', '', 'git.path'],
  [readsOthers, 'POST', '/snippets/12.git/git-receive-pack', '', 'git.push_other_project'],
  // tricks that would make another project look like the run's
  [own, 'POST', '/Group/Other/../Sub/App.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/Group/Other/%2e%2e/Sub/App.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/Group/Other/%2E%2E/Sub/App.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/Group/Other/%252e%252e/Sub/App.git/git-receive-pack', '', 'git.push_other_project'],
  [own, 'POST', '/Group/Sub/App%252Egit/git-receive-pack', '', 'git.push_other_project'],
  [own, 'POST', '/Group//Sub/App.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/Group/Sub/./App.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/Group/Sub/App%zz.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/Group/Sub/App%00.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', 'Group/Sub/App.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/App.git/git-receive-pack', '', 'git.path'],
  [own, 'POST', '/git-receive-pack', '', 'git.path'],
  // methods and services
  [own, 'POST', '/Group/Sub/App.git/info/refs', 'service=git-upload-pack', 'git.method'],
  [own, 'HEAD', '/Group/Sub/App.git/info/refs', 'service=git-upload-pack', 'git.method'],
  [own, 'GET', '/Group/Sub/App.git/git-receive-pack', '', 'git.method'],
  [own, 'GET', '/Group/Sub/App.git/info/refs', '', 'git.unsupported'],
  [own, 'GET', '/Group/Sub/App.git/info/refs', 'service=git-upload-archive', 'git.unsupported'],
  [own, 'GET', '/Group/Sub/App.git/info/refs', 'service=git-upload-pack&service=git-receive-pack', 'git.unsupported'],
  [own, 'POST', '/Group/Sub/App.git/info/lfs/objects/batch', '', 'git.unsupported'],
  [readsOthers, 'GET', '/Group/Other.git/info/refs', 'service=git-upload-pack;service=git-receive-pack', 'git.unsupported'],
  // a subpath install: matched after the subpath, refused outside it
  [subpath, 'POST', '/gitlab/Group/Sub/App.git/git-receive-pack', '', 'allow'],
  [subpath, 'POST', '/Group/Sub/App.git/git-receive-pack', '', 'git.path'],
  [subpath, 'POST', '/gitlabx/Group/Sub/App.git/git-receive-pack', '', 'git.path'],
] as const) {
  test(`git: ${method} ${path}${query === '' ? '' : `?${query.replace(/^\?/, '')}`}${policy === own ? '' : policy === subpath ? ' (under /gitlab)' : ' (reads others)'} → ${expected}`, () => {
    assert.equal(verdict(decideGitRequest(policy, { method, path, query })), expected);
  });
}

test('a refusal names its rule in the message and says what to do instead', () => {
  const decision = decideGitRequest(own, { method: 'POST', path: '/Group/Other.git/git-receive-pack' });
  assert.equal(decision.allow, false);
  assert.ok(!decision.allow && decision.message.startsWith('forgelink policy (git.push_other_project): '), !decision.allow ? decision.message : '');
  assert.match(!decision.allow ? decision.message : '', /may push only to Group\/Sub\/App/);
});

test('query as URLSearchParams is read the same as a string', () => {
  const query = new URLSearchParams({ service: 'git-receive-pack' });
  assert.equal(verdict(decideGitRequest(own, { method: 'GET', path: '/Group/Other.git/info/refs', query })), 'git.push_other_project');
});

for (const [path, expected] of [
  ['/api/v4/projects/42', 'api'],
  ['/api/v4', 'api'],
  ['/api/graphql', 'graphql'],
  ['/api/graphql/x', 'other'],
  ['/Group/Sub/App.git/info/refs', 'git'],
  ['/Group/Sub/App.git/git-receive-pack', 'git'],
  ['/Group/Sub/App/-/merge_requests', 'other'],
  ['/oauth/token', 'other'],
  ['/api/v4/projects/%zz', 'api'],
  ['/API/v4/projects', 'other'],
] as const) {
  test(`classifyRequest(${path}) = ${expected}`, () => assert.equal(classifyRequest(own, path), expected));
}

for (const [method, path, expected] of [
  ['GET', '/oauth/token', 'web.other'],
  ['POST', '/oauth/token', 'web.other'],
  ['GET', '/oauth/token/info', 'allow'],
  ['GET', '/oauth/token/info?access_token=x', 'allow'],
  ['POST', '/oauth/token/info', 'web.other'],
  ['GET', '/oauth/token/info/more', 'web.other'],
  ['GET', '/oauth/authorize', 'web.other'],
  ['GET', '/Group/Sub/App/-/raw/main/README.md', 'web.other'],
  ['GET', '/Group/Sub/App.git/info/refs?service=git-upload-pack', 'allow'],
  ['PUT', '/api/graphql', 'graphql.method'],
  ['DELETE', '/api/v4/user', 'api.user'],
] as const) {
  test(`decideGitLabRequest: ${method} ${path} → ${expected}`, () => {
    const [bare, query] = path.split('?');
    assert.equal(verdict(decideGitLabRequest(own, { method, path: bare ?? '', query })), expected);
  });
}
