import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiKeyName, apiKeyPrefix, generateApiKey, InputError, shouldRecordKeyUse } from '../../src/core/index.ts';

for (const [raw, expected] of [
  ['laptop', 'laptop'],
  ['  ci runner  ', 'ci runner'],
  ['x'.repeat(64), 'x'.repeat(64)],
  ['é'.repeat(64), 'é'.repeat(64)],
  ['agent 🤖', 'agent 🤖'],
] as const) {
  test(`the key name ${JSON.stringify(raw)} is ${JSON.stringify(expected)}`, () => assert.equal(apiKeyName(raw), expected));
}

for (const raw of ['', '   ', 'x'.repeat(65), 'line\nbreak', 'bell\u0007']) {
  test(`the key name ${JSON.stringify(raw)} is refused naming the field`, () => {
    assert.throws(() => apiKeyName(raw), (error) => error instanceof InputError && error.field === 'name');
  });
}

const now = new Date('2030-01-01T00:01:00.000Z');
for (const [lastUsedAt, expected] of [
  [null, true],
  ['2030-01-01T00:00:00.000Z', true],
  ['2030-01-01T00:00:00.001Z', false],
  ['2030-01-01T00:01:00.000Z', false],
] as const) {
  test(`a use at ${now.toISOString()} after one at ${lastUsedAt} is ${expected ? '' : 'not '}recorded`, () => {
    assert.equal(shouldRecordKeyUse(lastUsedAt, now), expected);
  });
}

test('the shown prefix is flk_ and four characters of the key', () => {
  const key = generateApiKey();
  assert.equal(apiKeyPrefix(key), key.slice(0, 8));
  assert.match(apiKeyPrefix(key), /^flk_[A-Za-z0-9_-]{4}$/);
});
