import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InputError } from '../../src/core/index.ts';
import { quoteCommandLine, splitCommandLine } from '../../src/server/web/command-line.ts';
import { expiryText, safeHref, safeNext } from '../../src/server/web/format.ts';
import { hashPassword, passwordProblem, verifyPassword } from '../../src/server/web/passwords.ts';
import { createAttemptLimiter } from '../../src/server/web/rate-limit.ts';

describe('command line splitting (shell words, no shell)', () => {
  for (const [line, argv] of [
    ['claude -p "fix the failing test"', ['claude', '-p', 'fix the failing test']],
    ["python3 /opt/agent.py --msg 'it'\\''s done'", ['python3', '/opt/agent.py', '--msg', "it's done"]],
    ['  a   b\tc  ', ['a', 'b', 'c']],
    ['echo "" x', ['echo', '', 'x']],
    ['echo a\\ b', ['echo', 'a b']],
    ['echo "say \\"hi\\" \\$HOME"', ['echo', 'say "hi" $HOME']],
    ["sh -c 'ls | wc -l; echo $HOME'", ['sh', '-c', 'ls | wc -l; echo $HOME']],
    ['run --x=1,2 user@host:path %s +y', ['run', '--x=1,2', 'user@host:path', '%s', '+y']],
  ] as const) {
    test(`splits ${line}`, () => assert.deepEqual(splitCommandLine(line), argv));
  }
  for (const [line, message] of [
    ['', /empty/],
    ['   ', /empty/],
    ['ls | wc', /"\|" would be interpreted by a shell/],
    ['a; b', /";"/],
    ['echo $HOME', /"\$"/],
    ['echo "$HOME"', /inside double quotes would be expanded/],
    ["echo 'open", /single quote/],
    ['echo "open', /double quote/],
    ['echo \\', /lone backslash/],
    ['a\nb', /one line/],
  ] as const) {
    test(`refuses ${JSON.stringify(line)}`, () =>
      assert.throws(() => splitCommandLine(line), (error) => error instanceof InputError && error.field === 'command' && message.test(error.message)));
  }
  for (const argv of [['claude', '-p', "fix it's \"test\" | now"], ['a b', '', '$x', '`y`', 'plain/path.py'], ["'"]]) {
    test(`quoting round-trips ${JSON.stringify(argv)}`, () => assert.deepEqual(splitCommandLine(quoteCommandLine(argv)), argv));
  }
});

describe('passwords', () => {
  test('hash and verify with scrypt; each hash has its own salt', async () => {
    const first = await hashPassword('correct horse battery');
    const second = await hashPassword('correct horse battery');
    assert.match(first, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.notEqual(first, second);
    assert.equal(await verifyPassword('correct horse battery', first), true);
    assert.equal(await verifyPassword('correct horse batterY', first), false);
  });
  test('unreadable or out-of-bounds hashes never verify', async () => {
    for (const stored of ['', 'plain', 'bcrypt$x', 'scrypt$3$8$1$c2FsdA$aGFzaA', 'scrypt$1099511627776$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA', 'scrypt$16$8$1$$aGFzaGhhc2hoYXNoaGFzaA']) {
      assert.equal(await verifyPassword('x', stored), false, stored);
    }
  });
  test('at least 10 characters', () => {
    assert.match(passwordProblem('short') ?? '', /at least 10/);
    assert.equal(passwordProblem('long enough!'), null);
  });
});

describe('sign-in attempt limiter', () => {
  test('5 failures in 15 minutes lock the key until the oldest leaves the window; success clears it', () => {
    let now = 0;
    const limiter = createAttemptLimiter({ maxFailures: 5, windowMs: 15 * 60_000, now: () => now });
    for (let i = 0; i < 5; i += 1) {
      assert.equal(limiter.retryAfterMs('ip\nalice'), 0);
      limiter.fail('ip\nalice');
      now += 60_000;
    }
    assert.equal(limiter.retryAfterMs('ip\nalice'), 10 * 60_000);
    assert.equal(limiter.retryAfterMs('ip\nbob'), 0);
    now = 15 * 60_000 + 1;
    assert.equal(limiter.retryAfterMs('ip\nalice'), 0);
    limiter.fail('ip\nalice');
    assert.ok(limiter.retryAfterMs('ip\nalice') > 0);
    limiter.succeed('ip\nalice');
    assert.equal(limiter.retryAfterMs('ip\nalice'), 0);
  });
  test('keeps at most maxKeys keys, dropping the stalest', () => {
    const limiter = createAttemptLimiter({ maxFailures: 1, windowMs: 60_000, maxKeys: 2, now: () => 0 });
    limiter.fail('a');
    limiter.fail('b');
    limiter.fail('c');
    assert.equal(limiter.retryAfterMs('a'), 0);
    assert.ok(limiter.retryAfterMs('b') > 0 && limiter.retryAfterMs('c') > 0);
  });
});

describe('page helpers', () => {
  test('links only to http(s)', () => {
    assert.equal(safeHref('javascript:alert(1)'), null);
    assert.equal(safeHref('data:text/html,x'), null);
    assert.equal(safeHref('https://gitlab.example.com/a/-/merge_requests/1'), 'https://gitlab.example.com/a/-/merge_requests/1');
  });
  test('next stays on this site', () => {
    for (const [next, expected] of [['/runs?x=1', '/runs?x=1'], ['//evil.example', '/'], ['/\\evil', '/'], ['https://evil.example', '/'], [undefined, '/']] as const) {
      assert.equal(safeNext(next), expected);
    }
  });
  test('expiry countdown', () => {
    const now = new Date('2026-05-01T12:00:00Z');
    assert.equal(expiryText(null, now), 'never');
    assert.equal(expiryText('2026-05-11', now), '2026-05-11 (in 10 days)');
    assert.equal(expiryText('2026-05-02', now), '2026-05-02 (tomorrow)');
    assert.equal(expiryText('2026-05-01', now), '2026-05-01 (today)');
    assert.equal(expiryText('2026-04-30', now), '2026-04-30 (expired 1 day ago)');
  });
});
