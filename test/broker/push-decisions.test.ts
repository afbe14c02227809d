import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decidePush,
  decideReceivePack,
  matchesProtectedPattern,
  parseReceivePackCommands,
  updatesNeedingAncestry,
  type Decision,
  type RefUpdate,
  type RunPolicy,
} from '../../src/broker/policy.ts';
import { FLUSH, NEW, NEW256, OLD, OLD256, ZERO, ZERO256, concat, pkt, runPolicy } from './fixtures.ts';

function verdict(decision: Decision): string {
  return decision.allow ? 'allow' : decision.rule;
}

const plain = runPolicy();
const tags = runPolicy({ allowTags: true });
const merges = runPolicy({ allowMerge: true });
const explicitMain = runPolicy({ allowedBranch: 'main' });
const explicitRelease = runPolicy({ allowedBranch: 'release/2.0' });
const explicitDevelop = runPolicy({ allowedBranch: 'develop' });

const fastForward = (): boolean => true;
const rewrite = (): boolean => false;
const unknown = (): undefined => undefined;

type Row = [string, RunPolicy, RefUpdate, ((oldId: string, newId: string) => boolean | undefined) | undefined, string];
const rows: Row[] = [
  // new branches: allowed, except default and protected names
  ['create a feature branch', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads/feature/x' }, undefined, 'allow'],
  ['create main (default)', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads/main' }, undefined, 'push.default_branch'],
  ['update main (default)', plain, { oldId: OLD, newId: NEW, ref: 'refs/heads/main' }, fastForward, 'push.default_branch'],
  ['create release/2.0 (protected by release/*)', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads/release/2.0' }, undefined, 'push.protected_branch'],
  ['create release/a/b (the wildcard spans slashes)', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads/release/a/b' }, undefined, 'push.protected_branch'],
  ['update stable (protected by name)', plain, { oldId: OLD, newId: NEW, ref: 'refs/heads/stable' }, fastForward, 'push.protected_branch'],
  ['create x-hotfix (protected by *-hotfix)', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads/x-hotfix' }, undefined, 'push.protected_branch'],
  ['create Main (case differs: another branch)', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads/Main' }, undefined, 'allow'],
  ['create releases/1 (not matched by release/*)', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads/releases/1' }, undefined, 'allow'],
  ['create Release/1 (protected patterns are case-sensitive)', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads/Release/1' }, undefined, 'allow'],
  // the run's explicit branch: allowed even when default or protected, but never rewritten or deleted
  ['update main when the run was started with main', explicitMain, { oldId: OLD, newId: NEW, ref: 'refs/heads/main' }, fastForward, 'allow'],
  ['rewrite main when the run was started with main', explicitMain, { oldId: OLD, newId: NEW, ref: 'refs/heads/main' }, rewrite, 'push.force_existing'],
  ['delete main when the run was started with main', explicitMain, { oldId: OLD, newId: ZERO, ref: 'refs/heads/main' }, undefined, 'push.delete_existing'],
  ['update stable when the run was started with main', explicitMain, { oldId: OLD, newId: NEW, ref: 'refs/heads/stable' }, fastForward, 'push.protected_branch'],
  ['create release/2.0 when the run was started with it', explicitRelease, { oldId: ZERO, newId: NEW, ref: 'refs/heads/release/2.0' }, undefined, 'allow'],
  ['create release/2.1 when the run was started with release/2.0', explicitRelease, { oldId: ZERO, newId: NEW, ref: 'refs/heads/release/2.1' }, undefined, 'push.protected_branch'],
  // branches that existed before the run: fast-forward only, never deleted
  ['fast-forward develop', plain, { oldId: OLD, newId: NEW, ref: 'refs/heads/develop' }, fastForward, 'allow'],
  ['rewrite develop', plain, { oldId: OLD, newId: NEW, ref: 'refs/heads/develop' }, rewrite, 'push.force_existing'],
  ['update develop, ancestry unknown', plain, { oldId: OLD, newId: NEW, ref: 'refs/heads/develop' }, unknown, 'push.unverified_update'],
  ['update develop, nobody asked', plain, { oldId: OLD, newId: NEW, ref: 'refs/heads/develop' }, undefined, 'push.unverified_update'],
  ['update develop when the run was started with it', explicitDevelop, { oldId: OLD, newId: NEW, ref: 'refs/heads/develop' }, fastForward, 'allow'],
  ['delete develop', plain, { oldId: OLD, newId: ZERO, ref: 'refs/heads/develop' }, undefined, 'push.delete_existing'],
  ['delete feature/old', plain, { oldId: OLD, newId: ZERO, ref: 'refs/heads/feature/old' }, undefined, 'push.delete_existing'],
  // branches the run created: the run may rewrite and delete its own work
  ['rewrite a branch the run created', plain, { oldId: OLD, newId: NEW, ref: 'refs/heads/feature/x' }, rewrite, 'allow'],
  ['delete a branch the run created', plain, { oldId: OLD, newId: ZERO, ref: 'refs/heads/feature/x' }, undefined, 'allow'],
  ['zero ids on both sides', plain, { oldId: ZERO, newId: ZERO, ref: 'refs/heads/feature/x' }, undefined, 'push.malformed'],
  // tags
  ['create a tag', plain, { oldId: ZERO, newId: NEW, ref: 'refs/tags/v1.0' }, undefined, 'push.tag'],
  ['create a tag when tags are allowed', tags, { oldId: ZERO, newId: NEW, ref: 'refs/tags/v1.0' }, undefined, 'allow'],
  ['move a tag when tags are allowed', tags, { oldId: OLD, newId: NEW, ref: 'refs/tags/v1.0' }, fastForward, 'push.tag_change'],
  ['delete a tag when tags are allowed', tags, { oldId: OLD, newId: ZERO, ref: 'refs/tags/v1.0' }, undefined, 'push.tag_change'],
  ['delete a tag', plain, { oldId: OLD, newId: ZERO, ref: 'refs/tags/v1.0' }, undefined, 'push.tag'],
  // refs outside branches and tags
  ['refs/merge-requests/1/head', plain, { oldId: ZERO, newId: NEW, ref: 'refs/merge-requests/1/head' }, undefined, 'push.other_ref'],
  ['refs/pipelines/5', tags, { oldId: ZERO, newId: NEW, ref: 'refs/pipelines/5' }, undefined, 'push.other_ref'],
  ['refs/for/main', plain, { oldId: ZERO, newId: NEW, ref: 'refs/for/main' }, undefined, 'push.other_ref'],
  ['refs/keep-around/x', plain, { oldId: ZERO, newId: NEW, ref: 'refs/keep-around/x' }, undefined, 'push.other_ref'],
  ['HEAD', plain, { oldId: ZERO, newId: NEW, ref: 'HEAD' }, undefined, 'push.other_ref'],
  ['refs/heads (no branch name)', plain, { oldId: ZERO, newId: NEW, ref: 'refs/heads' }, undefined, 'push.other_ref'],
  // SHA-256 ids
  ['SHA-256: create a branch', plain, { oldId: ZERO256, newId: NEW256, ref: 'refs/heads/feature/y' }, undefined, 'allow'],
  ['SHA-256: delete develop', plain, { oldId: OLD256, newId: ZERO256, ref: 'refs/heads/develop' }, undefined, 'push.delete_existing'],
  ['SHA-256: rewrite develop', plain, { oldId: OLD256, newId: NEW256, ref: 'refs/heads/develop' }, rewrite, 'push.force_existing'],
];
for (const [name, policy, update, isAncestor, expected] of rows) {
  test(`push: ${name} → ${expected}`, () => assert.equal(verdict(decidePush(policy, [update], { isAncestor })), expected));
}

test('one refused command refuses the whole push, and the message names the ref and the rule', () => {
  const decision = decidePush(plain, [
    { oldId: ZERO, newId: NEW, ref: 'refs/heads/feature/x' },
    { oldId: OLD, newId: NEW, ref: 'refs/heads/main' },
  ]);
  assert.equal(verdict(decision), 'push.default_branch');
  assert.equal(
    !decision.allow && decision.message,
    'forgelink policy (push.default_branch): push to main refused: it is the default branch of Group/Sub/App; push to a new branch and open a merge request instead',
  );
});

test('a push with no commands is allowed (nothing changes)', () => assert.equal(verdict(decidePush(plain, [])), 'allow'));

test('isAncestor is asked with the old and new id of the pre-existing branch only', () => {
  const asked: string[] = [];
  const commands = [
    { oldId: OLD, newId: NEW, ref: 'refs/heads/develop' },
    { oldId: OLD, newId: NEW, ref: 'refs/heads/feature/x' },
  ];
  decidePush(plain, commands, { isAncestor: (oldId, newId) => (asked.push(`${oldId}..${newId}`), true) });
  assert.deepEqual(asked, [`${OLD}..${NEW}`]);
  assert.deepEqual(updatesNeedingAncestry(plain, commands), [commands[0]]);
  assert.deepEqual(updatesNeedingAncestry(plain, [{ oldId: ZERO, newId: NEW, ref: 'refs/heads/develop' }, { oldId: OLD, newId: ZERO, ref: 'refs/heads/develop' }]), []);
});

for (const [options, policy, expected] of [
  [['merge_request.create', 'merge_request.target=main', 'merge_request.title=Fix it', 'merge_request.description=a=b'], plain, 'allow'],
  [['merge_request.remove_source_branch', 'merge_request.draft', 'merge_request.label=bug', 'merge_request.squash'], plain, 'allow'],
  [['mr.create', 'mr.target=main'], plain, 'allow'],
  [['ci.skip', 'ci.variable=A=1', 'integrations.skip_ci'], plain, 'allow'],
  [['merge_request.merge_when_pipeline_succeeds'], plain, 'push.merge_option'],
  [['merge_request.create', 'merge_request.auto_merge'], plain, 'push.merge_option'],
  [['mr.merge_when_pipeline_succeeds'], plain, 'push.merge_option'],
  [['MERGE_REQUEST.MERGE_WHEN_PIPELINE_SUCCEEDS'], plain, 'push.merge_option'],
  [['merge_request.merge_when_pipeline_succeeds'], merges, 'allow'],
  [['mr.auto_merge'], merges, 'allow'],
  [['merge_request.target_project=other/project'], plain, 'push.option'],
  [['secret_push_protection.skip_all'], plain, 'push.option'],
  [['secret_detection.skip_all'], merges, 'push.option'],
  [['something.new'], plain, 'push.option'],
] as const) {
  test(`push options ${JSON.stringify(options)}${policy === merges ? ' (merge allowed)' : ''} → ${expected}`, () => {
    assert.equal(verdict(decidePush(policy, [{ oldId: ZERO, newId: NEW, ref: 'refs/heads/feature/x' }], { pushOptions: options })), expected);
  });
}

for (const [pattern, branch, expected] of [
  ['main', 'main', true],
  ['main', 'main2', false],
  ['release/*', 'release/', true],
  ['release/*', 'release', false],
  ['*', 'anything/at/all', true],
  ['v1.*', 'v1x2', false],
  ['v1.*', 'v1.2', true],
  ['a*b*c', 'a/x/b/y/c', true],
  ['feat(x)*', 'feat(x)1', true],
  ['feat[*', 'feat[1', true],
] as const) {
  test(`matchesProtectedPattern(${pattern}, ${branch}) = ${expected}`, () => assert.equal(matchesProtectedPattern(pattern, branch), expected));
}

test('decideReceivePack: a parsed body is decided with its push options; a malformed or cut body is refused', () => {
  const body = concat(
    pkt(`${ZERO} ${NEW} refs/heads/feature/x\0report-status side-band-64k push-options agent=git/2.50`),
    FLUSH,
    pkt('merge_request.create'),
    pkt('merge_request.merge_when_pipeline_succeeds'),
    FLUSH,
    'PACK',
  );
  assert.equal(verdict(decideReceivePack(plain, parseReceivePackCommands(body))), 'push.merge_option');
  assert.equal(verdict(decideReceivePack(merges, parseReceivePackCommands(body))), 'allow');
  assert.equal(verdict(decideReceivePack(plain, parseReceivePackCommands(body.subarray(0, 20)))), 'push.malformed');
  assert.equal(verdict(decideReceivePack(plain, parseReceivePackCommands(new TextEncoder().encode('zzzz')))), 'push.malformed');
  const existing = concat(pkt(`${OLD} ${NEW} refs/heads/develop\0report-status`), FLUSH);
  assert.equal(verdict(decideReceivePack(plain, parseReceivePackCommands(existing), { isAncestor: fastForward })), 'allow');
  assert.equal(verdict(decideReceivePack(plain, parseReceivePackCommands(existing), { isAncestor: rewrite })), 'push.force_existing');
});

test('control characters from a ref never reach the message', () => {
  const decision = decidePush(plain, [{ oldId: ZERO, newId: NEW, ref: 'refs/odd/a\nb\rc' }]);
  assert.ok(!decision.allow && !/[\r\n]/.test(decision.message));
});
