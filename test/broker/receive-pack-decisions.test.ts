import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RECEIVE_PACK_COMMANDS_LIMIT, parseReceivePackCommands } from '../../src/broker/policy.ts';
import { refnameProblem } from '../../src/broker/receive-pack.ts';
import { FLUSH, NEW, NEW256, OLD, OLD256, ZERO, ZERO256, concat, pkt } from './fixtures.ts';

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

test('commands, capabilities after the NUL, a trailing LF dropped, and where the pack starts', () => {
  const head = concat(
    pkt(`${ZERO} ${NEW} refs/heads/feature/x\0 report-status side-band-64k agent=git/2.50.1\n`),
    pkt(`${OLD} ${ZERO} refs/heads/old\n`),
    pkt(`${OLD} ${NEW} refs/tags/v1`),
    FLUSH,
  );
  const parsed = parseReceivePackCommands(concat(head, 'PACK\0\0\0\x02'));
  assert.deepEqual(parsed, {
    complete: true,
    commands: [
      { oldId: ZERO, newId: NEW, ref: 'refs/heads/feature/x' },
      { oldId: OLD, newId: ZERO, ref: 'refs/heads/old' },
      { oldId: OLD, newId: NEW, ref: 'refs/tags/v1' },
    ],
    capabilities: ['report-status', 'side-band-64k', 'agent=git/2.50.1'],
    pushOptions: [],
    shallow: [],
    length: head.length,
    error: null,
  });
});

test('push options follow the commands when the client asked for push-options', () => {
  const head = concat(pkt(`${ZERO} ${NEW} refs/heads/x\0report-status push-options`), FLUSH, pkt('merge_request.create'), pkt('ci.variable=A=1\n'), FLUSH);
  const parsed = parseReceivePackCommands(concat(head, 'PACK'));
  assert.deepEqual(parsed.pushOptions, ['merge_request.create', 'ci.variable=A=1']);
  assert.equal(parsed.length, head.length);
  assert.equal(parsed.complete, true);
  // …and are not looked for otherwise: what follows the flush is the pack
  const plain = parseReceivePackCommands(concat(pkt(`${ZERO} ${NEW} refs/heads/x\0report-status`), FLUSH, 'PACK'));
  assert.deepEqual(plain.pushOptions, []);
  assert.equal(plain.error, null);
});

test('every shorter prefix is incomplete, never an error or a partial decision', () => {
  const body = concat(pkt(`${ZERO} ${NEW} refs/heads/x\0report-status push-options`), pkt(`${OLD} ${NEW} refs/heads/main`), FLUSH, pkt('mr.create'), FLUSH);
  for (let cut = 0; cut < body.length; cut += 1) {
    const parsed = parseReceivePackCommands(body.subarray(0, cut));
    assert.equal(parsed.complete, false, `cut at ${cut}`);
    assert.equal(parsed.error, null, `cut at ${cut}`);
  }
  assert.equal(parseReceivePackCommands(body).complete, true);
});

test('SHA-256 ids with object-format=sha256; mixed or mismatched lengths are refused', () => {
  const ok = parseReceivePackCommands(concat(pkt(`${ZERO256} ${NEW256} refs/heads/x\0report-status object-format=sha256`), pkt(`${OLD256} ${ZERO256} refs/heads/y`), FLUSH));
  assert.equal(ok.error, null);
  assert.deepEqual(ok.commands.map((command) => command.newId), [NEW256, ZERO256]);
  assert.match(parseReceivePackCommands(concat(pkt(`${ZERO256} ${NEW256} refs/heads/x\0report-status`), FLUSH)).error ?? '', /not sha1 ids/);
  assert.match(parseReceivePackCommands(concat(pkt(`${ZERO} ${NEW} refs/heads/x\0object-format=sha256`), FLUSH)).error ?? '', /not sha256 ids/);
  assert.match(parseReceivePackCommands(concat(pkt(`${ZERO} ${NEW256} refs/heads/x\0`), FLUSH)).error ?? '', /different lengths/);
  assert.match(parseReceivePackCommands(concat(pkt(`${ZERO} ${NEW} refs/heads/x\0`), pkt(`${OLD256} ${NEW256} refs/heads/y`), FLUSH)).error ?? '', /different lengths/);
  assert.match(parseReceivePackCommands(concat(pkt(`${ZERO} ${NEW} refs/heads/x\0object-format=md5`), FLUSH)).error ?? '', /unsupported object format/);
});

test('upper-case hex ids (git accepts them) are read as lower-case', () => {
  const parsed = parseReceivePackCommands(concat(pkt(`${'A'.repeat(40)} ${'0'.repeat(40)} refs/heads/x\0`), FLUSH));
  assert.deepEqual(parsed.commands, [{ oldId: 'a'.repeat(40), newId: ZERO, ref: 'refs/heads/x' }]);
});

test('shallow lines before the commands are collected', () => {
  const parsed = parseReceivePackCommands(concat(pkt(`shallow ${OLD}`), pkt(`${OLD} ${NEW} refs/heads/x\0report-status`), FLUSH));
  assert.deepEqual(parsed.shallow, [OLD]);
  assert.equal(parsed.commands.length, 1);
});

test('capabilities after a NUL on a later line count too (receive-pack reads them there)', () => {
  const parsed = parseReceivePackCommands(concat(pkt(`${ZERO} ${NEW} refs/heads/x`), pkt(`${ZERO} ${NEW} refs/heads/y\0push-options`), FLUSH, pkt('mr.create'), FLUSH));
  assert.deepEqual(parsed.capabilities, ['push-options']);
  assert.deepEqual(parsed.pushOptions, ['mr.create']);
  assert.deepEqual(parsed.commands.map((command) => command.ref), ['refs/heads/x', 'refs/heads/y']);
});

test('an empty command list (flush only) is complete with no commands', () => {
  assert.deepEqual(parseReceivePackCommands(FLUSH), { complete: true, commands: [], capabilities: [], pushOptions: [], shallow: [], length: 4, error: null });
});

for (const [name, body, error] of [
  ['a push certificate', concat(pkt('push-cert\0report-status push-cert=123\n'), pkt('certificate version 0.1\n'), pkt('push-cert-end\n'), FLUSH), /push certificates/],
  ['a length that is not hex', encode('00zz'), /bad pkt-line length/],
  ['a length under four', encode('0003'), /unexpected special packet 0003/],
  ['a delim packet (protocol v2)', concat(pkt(`${ZERO} ${NEW} refs/heads/x\0`), '0001'), /unexpected special packet 0001/],
  ['a response-end packet', encode('0002'), /unexpected special packet 0002/],
  ['an empty pkt-line', encode('0004'), /empty pkt-line/],
  ['a command without a ref', concat(pkt(`${ZERO} ${NEW}\0report-status`), FLUSH), /expected "<old-id> <new-id> <ref>"/],
  ['a short id', concat(pkt(`${ZERO.slice(1)} ${NEW} refs/heads/x\0`), FLUSH), /expected/],
  ['two spaces', concat(pkt(`${ZERO}  ${NEW} refs/heads/x\0`), FLUSH), /expected/],
  ['a ref with a space', concat(pkt(`${ZERO} ${NEW} refs/heads/a b\0`), FLUSH), /ref name/],
  ['a ref with ..', concat(pkt(`${ZERO} ${NEW} refs/heads/a/../main\0`), FLUSH), /ref name/],
  ['a ref with a control character', concat(pkt(`${ZERO} ${NEW} refs/heads/a\tb\0`), FLUSH), /ref name/],
  ['a ref ending in /', concat(pkt(`${ZERO} ${NEW} refs/heads/main/\0`), FLUSH), /ref name/],
  ['a ref with //', concat(pkt(`${ZERO} ${NEW} refs//heads/main\0`), FLUSH), /ref name/],
  ['a ref ending in .lock', concat(pkt(`${ZERO} ${NEW} refs/heads/main.lock\0`), FLUSH), /ref name/],
  ['a ref with a component starting with .', concat(pkt(`${ZERO} ${NEW} refs/heads/.main\0`), FLUSH), /ref name/],
  ['a ref with @{', concat(pkt(`${ZERO} ${NEW} refs/heads/main@{1}\0`), FLUSH), /ref name/],
  ['a ref with a backslash', concat(pkt(`${ZERO} ${NEW} refs/heads/a\\b\0`), FLUSH), /ref name/],
  ['a ref that is not UTF-8', concat(pkt(concat(`${ZERO} ${NEW} refs/heads/`, new Uint8Array([0xff, 0xfe]), '\0')), FLUSH), /UTF-8/],
  ['a push option that is not UTF-8', concat(pkt(`${ZERO} ${NEW} refs/heads/x\0push-options`), FLUSH, pkt(new Uint8Array([0xc3])), FLUSH), /UTF-8/],
  ['a bad pkt-line among the push options', concat(pkt(`${ZERO} ${NEW} refs/heads/x\0push-options`), FLUSH, 'xyz!'), /bad pkt-line length/],
  ['a bad shallow line', concat(pkt('shallow 1234'), FLUSH), /expected/],
] as const) {
  test(`malformed: ${name}`, () => {
    const parsed = parseReceivePackCommands(body);
    assert.equal(parsed.complete, true);
    assert.match(parsed.error ?? '(no error)', error);
  });
}

test('the ref name in an error is printable', () => {
  const parsed = parseReceivePackCommands(concat(pkt(`${ZERO} ${NEW} refs/heads/a\x1bb\0`), FLUSH));
  assert.ok(parsed.error !== null && !/[\x00-\x1f]/.test(parsed.error), parsed.error ?? '');
});

test('commands that never end within the limit are an error, not a wait for ever', () => {
  const line = pkt(`${OLD} ${NEW} refs/heads/${'b'.repeat(900)}`);
  const count = Math.ceil(RECEIVE_PACK_COMMANDS_LIMIT / line.length) + 1;
  const body = concat(...Array.from({ length: count }, () => line));
  const parsed = parseReceivePackCommands(body);
  assert.equal(parsed.complete, true);
  assert.match(parsed.error ?? '', /do not end within/);
});

for (const [ref, problem] of [
  ['refs/heads/main', null],
  ['refs/heads/feature/ümlaut', null],
  ['refs/heads/a.b', null],
  ['@', 'is empty or "@"'],
  ['', 'is empty or "@"'],
  ['refs/heads/x.', 'ends with "." or "/"'],
  ['refs/heads/x?', 'contains a space, a control character or one of ~^:?*[\\'],
  ['refs/heads/x~1', 'contains a space, a control character or one of ~^:?*[\\'],
  ['refs/heads/a:b', 'contains a space, a control character or one of ~^:?*[\\'],
] as const) {
  test(`refnameProblem(${JSON.stringify(ref)})`, () => assert.equal(refnameProblem(ref), problem));
}
