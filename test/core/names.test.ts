import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { branchNameProblem, projectPathProblem } from '../../src/core/index.ts';

describe('project paths and ids (GitLab path rules, no dot segments)', () => {
  for (const accepted of [
    '42',
    'group/app',
    'acme/platform/api',
    'Acme/Platform/API',
    'group/.dotfiles',
    '_group/_app',
    'g.r.o.u.p/app',
    'group-/app',
    '123/456',
    'group/app.',
    'group/app-',
    `${'g/'.repeat(21)}app`,
    `group/${'a'.repeat(255)}`,
  ]) {
    test(`accepts ${JSON.stringify(accepted.slice(0, 60))}`, () => assert.equal(projectPathProblem(accepted), null));
  }

  for (const [refused, why] of [
    ['', /empty/],
    ['0', /not a project id/],
    ['007', /not a project id/],
    ['1234567890123456789', /not a project id/],
    ['app', /name its group/],
    ['alicegl/playground/../../acme/platform/api', /"\.\." segment/],
    ['../acme/app', /"\.\." segment/],
    ['group/..', /"\.\." segment/],
    ['group/./app', /"\." segment/],
    ['./group/app', /"\." segment/],
    ['group//app', /empty segment/],
    ['/group/app', /empty segment/],
    ['group/app/', /empty segment/],
    ['group/app%2F..', /contains "%"/],
    ['group/%2e%2e', /contains "%"/],
    ['group/a b', /contains " "/],
    ['group/a\\b', /contains "\\\\"/],
    ['group/app?x=1', /contains "\?"/],
    ['group/app#x', /contains "#"/],
    ['group/äpp', /contains "ä"/],
    ['group/app\n', /contains "\\n"/],
    ['-group/app', /starting with "-"/],
    ['group/-app', /starting with "-"/],
    ['group/app.git', /ending in "\.git".*leave out/],
    ['group/app.atom', /ending in "\.atom"/],
    ['group.git/app', /ending in "\.git"/],
    ['group./app', /group segment ending in "\."/],
    [`${'g/'.repeat(22)}app`, /more than 22 segments/],
    [`group/${'a'.repeat(256)}`, /longer than 255/],
  ] as const) {
    test(`refuses ${JSON.stringify(refused.slice(0, 60))}`, () => assert.match(projectPathProblem(refused) ?? 'accepted', why));
  }
});

describe('branch names (git check-ref-format --branch)', () => {
  const repo = mkdtempSync(path.join(tmpdir(), 'forgelink-refnames-'));
  execFileSync('git', ['init', '-q', repo]);
  after(() => rmSync(repo, { recursive: true, force: true }));

  /** What git itself says, outside any HEAD expansion: git is the reference the table is held to. */
  function gitAccepts(name: string): boolean {
    try {
      execFileSync('git', ['check-ref-format', '--branch', name], { cwd: repo, stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  const table: ReadonlyArray<readonly [string, boolean]> = [
    ['main', true],
    ['feature/x', true],
    ['agent/run_1', true],
    ['release-1.2', true],
    ['head', true],
    ['HEAD/x', true],
    ['x/HEAD', true],
    ['a@b', true],
    ['@x', true],
    ['é', true],
    ['refs/heads/x', true],
    ['lock', true],
    ['x.lockfile', true],
    ['HEAD', false],
    ['-x', false],
    ['-', false],
    ['a..b', false],
    ['a..', false],
    ['a/.b', false],
    ['.a', false],
    ['a.lock', false],
    ['a.lock/b', false],
    ['a/b.lock/c', false],
    ['.lock', false],
    ['x@{y', false],
    ['@{-1}', false],
    ['a b', false],
    ['a\tb', false],
    ['a\x7fb', false],
    ['a\x01b', false],
    ['a~1', false],
    ['a^', false],
    ['a:b', false],
    ['a?', false],
    ['a*', false],
    ['a[b', false],
    ['a\\b', false],
    ['a/', false],
    ['/a', false],
    ['a//b', false],
    ['a.', false],
    ['a/.', false],
    ['a/..', false],
  ];
  for (const [name, valid] of table) {
    test(`${JSON.stringify(name)} is ${valid ? 'valid' : 'refused'}, as git says`, () => {
      assert.equal(branchNameProblem(name) === null, valid, branchNameProblem(name) ?? 'accepted');
      assert.equal(gitAccepts(name), valid, 'git disagrees with the table');
    });
  }

  test('stricter than git: "@" (git reads it as HEAD), the empty name and names over 255 characters', () => {
    assert.match(branchNameProblem('@') ?? '', /current commit/);
    assert.match(branchNameProblem('') ?? '', /empty/);
    assert.match(branchNameProblem('a'.repeat(256)) ?? '', /longer than 255/);
    assert.equal(branchNameProblem('a'.repeat(255)), null);
  });

  test('the reasons say what is wrong', () => {
    assert.match(branchNameProblem('HEAD') ?? '', /current commit/);
    assert.match(branchNameProblem('x.lock') ?? '', /\.lock/);
    assert.match(branchNameProblem('a~1') ?? '', /"~"/);
  });
});
