import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyRotationSettings, isRotationDue, rotationExpiryDate, rotationUnsupported, type TokenRotation } from '../../src/core/index.ts';
import { parseDays } from '../../src/cli/rotation-commands.ts';
import { rotationText } from '../../src/cli/rotation-format.ts';

const NOW = new Date('2026-03-10T15:00:00Z');
const ON: TokenRotation = { enabled: true, lifetimeDays: 30, thresholdDays: 7, lastRotatedAt: null };

for (const [expiresAt, rotation, kind, expected] of [
  ['2026-03-17', ON, 'pat', true], // 7 days left: at the threshold
  ['2026-03-18', ON, 'pat', false], // 8 days left
  ['2026-03-10', ON, 'pat', true], // expires today
  ['2026-03-01', ON, 'pat', true], // already past (GitLab will say so)
  [null, ON, 'pat', false], // never expires: nothing to rotate for
  ['2026-03-12', { ...ON, enabled: false }, 'pat', false],
  ['2026-03-12', null, 'pat', false],
  ['2026-03-12', ON, 'oauth', false],
] as const) {
  test(`isRotationDue: ${kind} expiring ${expiresAt} with rotation ${JSON.stringify(rotation)} → ${expected}`, () => {
    assert.equal(isRotationDue({ kind, expiresAt, rotation }, NOW), expected);
  });
}

for (const [scopes, kind, version, expected] of [
  [['api'], 'pat', '18.1.1-ee', null],
  [['read_repository', 'write_repository', 'self_rotate'], 'pat', null, null],
  [['self_rotate'], 'pat', '16.10.0', null],
  [['read_repository', 'write_repository'], 'pat', '18.1.1-ee', /api or self_rotate/],
  [['read_api', 'read_user'], 'pat', null, /api or self_rotate/],
  [['api'], 'pat', '16.9.2-ee', /older than 16\.10/],
  [['api'], 'pat', '15.11.0', /older than 16\.10/],
  [['api'], 'oauth', null, /OAuth/],
] as const) {
  test(`rotationUnsupported: ${kind} ${scopes.join(',')} on ${version} → ${expected}`, () => {
    const why = rotationUnsupported({ kind, scopes: [...scopes], instanceVersion: version });
    if (expected === null) assert.equal(why, null);
    else assert.match(why ?? '', expected);
  });
}

test('rotationExpiryDate counts whole days from today (UTC)', () => {
  assert.equal(rotationExpiryDate(NOW, 30), '2026-04-09');
  assert.equal(rotationExpiryDate(new Date('2026-12-31T23:59:59Z'), 1), '2027-01-01');
  assert.equal(rotationExpiryDate(NOW, 365), '2027-03-10');
});

for (const [current, input, expected] of [
  [null, { enabled: true }, { enabled: true, lifetimeDays: 30, thresholdDays: 7, lastRotatedAt: null }],
  [null, { enabled: true, lifetimeDays: 5 }, { enabled: true, lifetimeDays: 5, thresholdDays: 4, lastRotatedAt: null }],
  [null, { enabled: true, lifetimeDays: 90, thresholdDays: 14 }, { enabled: true, lifetimeDays: 90, thresholdDays: 14, lastRotatedAt: null }],
  [{ ...ON, lifetimeDays: 60, lastRotatedAt: '2026-01-01T00:00:00.000Z' }, { enabled: false }, { enabled: false, lifetimeDays: 60, thresholdDays: 7, lastRotatedAt: '2026-01-01T00:00:00.000Z' }],
  [ON, { enabled: true, thresholdDays: 3 }, { ...ON, thresholdDays: 3 }],
] as const) {
  test(`applyRotationSettings ${JSON.stringify(input)} over ${JSON.stringify(current)}`, () => {
    assert.deepEqual(applyRotationSettings(current, input), expected);
  });
}

for (const [input, field] of [
  [{ enabled: true, lifetimeDays: 366 }, 'rotation.lifetimeDays'],
  [{ enabled: true, lifetimeDays: 1 }, 'rotation.lifetimeDays'],
  [{ enabled: true, lifetimeDays: 2.5 }, 'rotation.lifetimeDays'],
  [{ enabled: true, lifetimeDays: 10, thresholdDays: 10 }, 'rotation.thresholdDays'],
  [{ enabled: true, thresholdDays: 0 }, 'rotation.thresholdDays'],
  [{ enabled: true, thresholdDays: 30 }, 'rotation.thresholdDays'],
] as const) {
  test(`applyRotationSettings refuses ${JSON.stringify(input)}, naming ${field}`, () => {
    assert.throws(() => applyRotationSettings(null, input), { name: 'InputError', field });
  });
}

for (const [text, days] of [
  ['30d', 30],
  ['30', 30],
  ['4w', 28],
  [' 7D ', 7],
] as const) {
  test(`parseDays(${JSON.stringify(text)}) = ${days}`, () => assert.equal(parseDays(text, '--lifetime'), days));
}

for (const text of ['30 days', '1.5d', '-3d', 'P30D', '']) {
  test(`parseDays refuses ${JSON.stringify(text)}`, () => assert.throws(() => parseDays(text, '--lifetime'), /--lifetime: expected a number of days/));
}

test('rotationText says what connections show prints', () => {
  assert.match(rotationText({ id: 'con_1', kind: 'oauth', rotation: null }), /^not needed/);
  assert.match(rotationText({ id: 'con_1', kind: 'pat', rotation: null }), /^off \(forgelink connections rotation con_1 --enable\)$/);
  assert.equal(
    rotationText({ id: 'con_1', kind: 'pat', rotation: { ...ON, lastRotatedAt: '2026-03-01T00:00:00.000Z' } }),
    'on: a new token for 30 days when 7 or fewer are left; last rotated 2026-03-01T00:00:00.000Z',
  );
});
