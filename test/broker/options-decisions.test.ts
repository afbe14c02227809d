import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../src/core/index.ts';
import { PolicyOptionsSchema, resolvePolicyOptions, type PolicyOptions } from '../../src/broker/policy.ts';

const none: PolicyOptions = { allowTags: false, allowMerge: false, readOtherProjects: false };
const all: PolicyOptions = { allowTags: true, allowMerge: true, readOtherProjects: true };

for (const [name, operator, connection, run, expected] of [
  ['operator off, nothing asked', none, undefined, undefined, none],
  ['operator on, nothing asked: the operator default', all, undefined, undefined, all],
  ['operator on, run narrows tags', all, undefined, { allowTags: false }, { ...all, allowTags: false }],
  ['operator on, run confirms merge', all, null, { allowMerge: true }, all],
  ['operator on, connection narrows merge', all, { allowMerge: false }, undefined, { ...all, allowMerge: false }],
  ['operator on, connection narrows, run narrows more', all, { allowMerge: false }, { readOtherProjects: false }, { allowTags: true, allowMerge: false, readOtherProjects: false }],
  ['operator off, connection says on: still off', none, { allowTags: true }, undefined, none],
  ['operator on, connection on, run off', all, all, none, none],
] as const) {
  test(`resolvePolicyOptions: ${name}`, () => assert.deepEqual(resolvePolicyOptions(operator, connection, run), expected));
}

for (const [name, operator, connection, run, field, who] of [
  ['a run may not widen the operator', none, undefined, { allowTags: true }, 'policy.allowTags', /operator's policy \(FORGELINK_POLICY\)/],
  ['a run may not widen the connection', all, { allowMerge: false }, { allowMerge: true }, 'policy.allowMerge', /this connection's policy/],
  ['a run may not widen a connection the operator also closed', { ...all, readOtherProjects: false }, { readOtherProjects: false }, { readOtherProjects: true }, 'policy.readOtherProjects', /operator's policy/],
] as const) {
  test(`resolvePolicyOptions: ${name}`, () => {
    assert.throws(
      () => resolvePolicyOptions(operator, connection, run),
      (error: unknown) => error instanceof InputError && error.field === field && who.test(error.message) && error.message.includes('only narrow'),
    );
  });
}

test('PolicyOptionsSchema: booleans only, unknown keys refused', () => {
  assert.deepEqual(PolicyOptionsSchema.parse({ allowTags: false }), { allowTags: false });
  assert.equal(PolicyOptionsSchema.safeParse({ allowTags: 'yes' }).success, false);
  assert.equal(PolicyOptionsSchema.safeParse({ allowTag: true }).success, false);
});
