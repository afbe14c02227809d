import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createScrubber, REDACTED, secretForms } from '../../src/core/index.ts';

const TOKEN = 'glpat-AbCdEfGhIjKlMnOpQrSt';
const OAUTH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SPECIAL = 'p@ss/w+rd=secret?&';

function scrubAll(secrets: string[], chunks: string[]): string {
  const scrubber = createScrubber(secrets);
  return chunks.map((chunk) => scrubber.push(chunk)).join('') + scrubber.flush();
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}

for (const [name, input, expected] of [
  ['plain', `token=${TOKEN} done`, `token=${REDACTED} done`],
  ['twice on a line', `${TOKEN}${TOKEN}`, `${REDACTED}${REDACTED}`],
  ['URL-encoded', `x=${encodeURIComponent(SPECIAL)}&y`, `x=${REDACTED}&y`],
  ['base64', `echo ${b64(TOKEN)}`, `echo ${REDACTED}`],
  ['oauth2 basic auth', `Authorization: Basic ${b64(`oauth2:${TOKEN}`)}\n`, `Authorization: Basic ${REDACTED}\n`],
  ['no secret', 'nothing to see here', 'nothing to see here'],
  ['empty input', '', ''],
] as const) {
  test(`redacts: ${name}`, () => {
    assert.equal(scrubAll([TOKEN, SPECIAL], [input]), expected);
  });
}

test('basic auth with any user name leaves no decodable token', () => {
  for (const user of ['x', 'ab', 'bot-user', 'x-access-token']) {
    const header = b64(`${user}:${TOKEN}`);
    const out = scrubAll([TOKEN], [header]);
    assert.ok(out.includes(REDACTED), `${user}: ${out}`);
    assert.ok(!Buffer.from(out.replace(REDACTED, ''), 'base64').toString('latin1').includes(TOKEN.slice(0, 12)));
  }
});

test('base64url forms are covered too', () => {
  const secret = 'ab?>c~~~d??>>';
  const url = Buffer.from(secret).toString('base64url');
  assert.notEqual(url, b64(secret).replace(/=+$/, ''), 'the sample must differ between the alphabets');
  assert.ok(scrubAll([secret], [url]).includes(REDACTED));
});

test('short and empty secrets are ignored', () => {
  assert.deepEqual(secretForms(['', 'short', '1234567']), []);
  assert.equal(scrubAll(['', 'abc'], ['abc abc']), 'abc abc');
});

test('forms come longest first without duplicates', () => {
  const forms = secretForms([TOKEN, TOKEN]);
  assert.equal(new Set(forms).size, forms.length);
  for (let i = 1; i < forms.length; i++) assert.ok(forms[i - 1]!.length >= forms[i]!.length);
});

test('an occurrence split across chunks is redacted', () => {
  for (let cut = 1; cut < TOKEN.length; cut++) {
    const out = scrubAll([TOKEN], [`before ${TOKEN.slice(0, cut)}`, `${TOKEN.slice(cut)} after`]);
    assert.equal(out, `before ${REDACTED} after`, `cut at ${cut}`);
  }
});

test('one character per chunk', () => {
  assert.equal(scrubAll([TOKEN], [...`a ${TOKEN} b`]), `a ${REDACTED} b`);
});

test('holds back less than the longest form and emits the tail on flush', () => {
  const scrubber = createScrubber([TOKEN]);
  const longest = secretForms([TOKEN])[0]!.length;
  const text = 'x'.repeat(200);
  const now = scrubber.push(text);
  assert.ok(text.length - now.length < longest);
  assert.equal(now + scrubber.flush(), text);
  assert.equal(scrubber.flush(), '');
});

test('without secrets chunks pass through unchanged', () => {
  const scrubber = createScrubber([]);
  assert.equal(scrubber.push('abc'), 'abc');
  assert.equal(scrubber.flush(), '');
});

/** A small deterministic PRNG so a failure can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('property: random texts split at random places never emit a secret', () => {
  const secrets = [TOKEN, OAUTH, SPECIAL];
  const forms = secretForms(secrets);
  const pieces = [
    ...secrets,
    encodeURIComponent(SPECIAL),
    b64(`oauth2:${TOKEN}`),
    b64(`oauth2:${OAUTH}`),
    b64(TOKEN),
    'glpat-',
    TOKEN.slice(0, 10),
    '\n',
    'remote: ',
    ' ',
    'x',
    '\x1b[32m',
    'é',
  ];
  for (let seed = 1; seed <= 400; seed++) {
    const random = mulberry32(seed);
    let text = '';
    const parts = 1 + Math.floor(random() * 12);
    for (let i = 0; i < parts; i++) text += pieces[Math.floor(random() * pieces.length)];
    const chunks: string[] = [];
    for (let at = 0; at < text.length; ) {
      const size = Math.floor(random() * 30);
      chunks.push(text.slice(at, at + size));
      at += size;
    }
    const scrubber = createScrubber(secrets);
    let out = '';
    for (const chunk of chunks) {
      const emitted = scrubber.push(chunk);
      out += emitted;
    }
    out += scrubber.flush();
    for (const form of forms) assert.ok(!out.includes(form), `seed ${seed}: a form of a secret leaked`);
    for (const secret of secrets) assert.ok(!out.includes(secret), `seed ${seed}: a secret leaked`);
    // Nothing else changed: scrubbing the whole text at once gives the same result.
    assert.equal(out, scrubAll(secrets, [text]), `seed ${seed}: chunking changed the output`);
  }
});

test('text that cannot be the start of a secret is emitted at once, so a live log is not delayed', () => {
  const scrubber = createScrubber([TOKEN]);
  assert.equal(scrubber.push('gitlab:'), 'gitlab:');
  assert.equal(scrubber.push('200\n'), '200\n');
  // A tail that could begin the token waits for the next chunk…
  assert.equal(scrubber.push(`see ${TOKEN.slice(0, 8)}`), 'see ');
  // …and is redacted once it completes.
  assert.equal(scrubber.push(`${TOKEN.slice(8)} done`), `${REDACTED} done`);
  assert.equal(scrubber.flush(), '');
});

test('a secret added later is redacted from then on, in every form, even split across chunks', () => {
  const fresh = 'f'.repeat(20) + 'ABCDEFGH0123456789';
  const scrubber = createScrubber([TOKEN]);
  let out = scrubber.push(`old ${TOKEN} `);
  scrubber.add(fresh);
  scrubber.add(fresh);
  scrubber.add('short');
  out += scrubber.push(`then ${fresh.slice(0, 7)}`);
  out += scrubber.push(`${fresh.slice(7)} as basic ${b64(`oauth2:${fresh}`)} and short`);
  out += scrubber.flush();
  assert.equal(out, `old ${REDACTED} then ${REDACTED} as basic ${REDACTED} and short`);
});

test('a scrubber with no secrets at first redacts one added later', () => {
  const scrubber = createScrubber([]);
  assert.equal(scrubber.push('before '), 'before ');
  scrubber.add(OAUTH);
  assert.equal(scrubber.push(`after ${OAUTH}`) + scrubber.flush(), `after ${REDACTED}`);
});
