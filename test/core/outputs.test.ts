import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  diffBranches,
  mergeOutputs,
  parseLsRemote,
  parsePushReplies,
  type GitLabIssue,
  type GitLabMergeRequest,
  type PushReply,
} from '../../src/core/index.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const SHA256 = 'd'.repeat(64);

describe('parseLsRemote', () => {
  test('keeps branches only, by name', () => {
    const text = [
      `${A}\tHEAD`,
      `${A}\trefs/heads/main`,
      `${B}\trefs/heads/feature/deep/x`,
      `${C}\trefs/tags/v1`,
      `${A}\trefs/tags/v1^{}`,
      `${C}\trefs/merge-requests/1/head`,
      `${SHA256}\trefs/heads/sha256-repo`,
      '',
    ].join('\n');
    assert.deepEqual(
      parseLsRemote(text),
      new Map([
        ['main', A],
        ['feature/deep/x', B],
        ['sha256-repo', SHA256],
      ]),
    );
  });

  for (const [name, text] of [
    ['empty', ''],
    ['CRLF only', '\r\n\r\n'],
    ['garbage', 'fatal: could not read Username\nwarning: something'],
    ['short sha', `abc\trefs/heads/main`],
    ['bare refs/heads/', `${A}\trefs/heads/`],
  ] as const) {
    test(`nothing from ${name}`, () => assert.equal(parseLsRemote(text).size, 0));
  }

  test('CRLF line ends', () => {
    assert.deepEqual(parseLsRemote(`${A}\trefs/heads/main\r\n${B}\trefs/heads/dev\r\n`), new Map([['main', A], ['dev', B]]));
  });
});

describe('diffBranches', () => {
  for (const [name, before, after, expected] of [
    ['nothing changed', { main: A }, { main: A }, []],
    ['new branch', { main: A }, { main: A, 'agent/fix': B }, [{ name: 'agent/fix', sha: B, created: true }]],
    ['moved branch', { main: A }, { main: B }, [{ name: 'main', sha: B, created: false }]],
    ['deleted branch ignored', { main: A, old: B }, { main: A }, []],
    ['empty before (empty repository)', {}, { main: A }, [{ name: 'main', sha: A, created: true }]],
    [
      'sorted by name',
      { main: A },
      { zeta: B, main: C, 'a/b': A, B: A },
      [
        { name: 'B', sha: A, created: true },
        { name: 'a/b', sha: A, created: true },
        { name: 'main', sha: C, created: false },
        { name: 'zeta', sha: B, created: true },
      ],
    ],
  ] as const) {
    test(name, () => {
      const map = (record: Record<string, string>) => new Map(Object.entries(record));
      assert.deepEqual(diffBranches(map(before), map(after)), expected);
    });
  }
});

describe('parsePushReplies', () => {
  const view = (branch: string, webUrl: string, iid: number): PushReply => ({ branch, webUrl, iid, kind: 'view' });
  const create = (branch: string, webUrl: string): PushReply => ({ branch, webUrl, iid: null, kind: 'create' });
  const newUrl = 'https://gl.example.com/g/app/-/merge_requests/new?merge_request%5Bsource_branch%5D=feature%2Fx';

  for (const [name, text, expected] of [
    [
      'an existing merge request',
      [
        'Enumerating objects: 5, done.',
        'remote: ',
        'remote: View merge request for agent/fix:',
        'remote:   https://gl.example.com/group/sub/app/-/merge_requests/12',
        'remote: ',
        'To https://gl.example.com/group/sub/app.git',
        '   d0cb513..e5ed0c9  agent/fix -> agent/fix',
      ].join('\n'),
      [view('agent/fix', 'https://gl.example.com/group/sub/app/-/merge_requests/12', 12)],
    ],
    [
      'no merge request yet',
      `remote:\nremote: To create a merge request for feature/x, visit:\nremote:   ${newUrl}\nremote:\n`,
      [create('feature/x', newUrl)],
    ],
    [
      'CRLF, bare CR progress and ANSI colours',
      '\x1b[1mremote: Resolving deltas: 50%\rremote: Resolving deltas: 100% (3/3)\x1b[K\r\n' +
        'remote: \x1b[32mView merge request for main:\x1b[0m\x1b[K\r\n' +
        'remote:   https://gl.example.com/g/app/-/merge_requests/3\x1b[K\r\n',
      [view('main', 'https://gl.example.com/g/app/-/merge_requests/3', 3)],
    ],
    [
      'several pushes in one log',
      [
        'remote: To create a merge request for a, visit:',
        `remote:   ${newUrl}`,
        'remote: View merge request for b/c:',
        'remote:   https://gl.example.com/g/app/-/merge_requests/7',
        'some agent output',
        'remote: View merge request for d:',
        'remote:   https://gl.example.com/g/app/-/merge_requests/8',
      ].join('\n'),
      [
        create('a', newUrl),
        view('b/c', 'https://gl.example.com/g/app/-/merge_requests/7', 7),
        view('d', 'https://gl.example.com/g/app/-/merge_requests/8', 8),
      ],
    ],
    [
      'a GitLab before 12.x without /-/ in the URL, under a subpath',
      'remote: View merge request for x:\nremote:   https://h.example.com/gitlab/g/app/merge_requests/2846\n',
      [view('x', 'https://h.example.com/gitlab/g/app/merge_requests/2846', 2846)],
    ],
    ['a notice without a URL', 'remote: View merge request for x:\nremote: something else\nremote:   https://h/x', []],
    ['text that merely mentions it', 'echo "View merge request for x: soon"\n', []],
    ['nothing', 'Everything up-to-date\n', []],
  ] as const) {
    test(name, () => assert.deepEqual(parsePushReplies(text), expected));
  }

  test('a view URL without an iid keeps the notice with iid null', () => {
    assert.deepEqual(parsePushReplies('remote: View merge request for x:\nremote:   https://h.example.com/g/app\n'), [
      { branch: 'x', webUrl: 'https://h.example.com/g/app', iid: null, kind: 'view' },
    ]);
  });
});

describe('mergeOutputs', () => {
  const web = 'https://gl.example.com/group/app';
  const mr = (iid: number, sourceBranch: string): GitLabMergeRequest => ({
    iid,
    title: `MR ${iid}`,
    sourceBranch,
    targetBranch: 'main',
    webUrl: `${web}/-/merge_requests/${iid}`,
    authorId: 7,
    createdAt: '2026-01-01T00:00:00Z',
  });
  const issue = (iid: number): GitLabIssue => ({
    iid,
    title: `Issue ${iid}`,
    webUrl: `${web}/-/issues/${iid}`,
    authorId: 7,
    createdAt: '2026-01-01T00:00:00Z',
  });

  test('empty', () => {
    assert.deepEqual(
      mergeOutputs({ branches: [], apiMergeRequests: [], pushMergeRequests: [], issues: [], projectWebUrl: web }),
      { branches: [], mergeRequests: [], issues: [] },
    );
  });

  test('branches get tree URLs, segments encoded and slashes kept', () => {
    const out = mergeOutputs({
      branches: [
        { name: 'agent/fix', sha: A, created: true },
        { name: 'main', sha: B, created: false },
        { name: 'odd#name%', sha: C, created: true },
      ],
      apiMergeRequests: [],
      pushMergeRequests: [],
      issues: [],
      projectWebUrl: `${web}/`,
    });
    assert.deepEqual(out.branches, [
      { name: 'agent/fix', sha: A, created: true, webUrl: `${web}/-/tree/agent/fix` },
      { name: 'main', sha: B, created: false, webUrl: `${web}/-/tree/main` },
      { name: 'odd#name%', sha: C, created: true, webUrl: `${web}/-/tree/odd%23name%25` },
    ]);
  });

  test('API merge requests win over push duplicates; create notices are not outputs', () => {
    const out = mergeOutputs({
      branches: [],
      apiMergeRequests: [mr(5, 'agent/fix'), mr(2, 'other')],
      pushMergeRequests: [
        { branch: 'agent/fix', webUrl: `${web}/-/merge_requests/5`, iid: 5, kind: 'view' },
        { branch: 'pushed', webUrl: `${web}/-/merge_requests/9`, iid: 9, kind: 'view' },
        { branch: 'pushed', webUrl: `${web}/-/merge_requests/9`, iid: 9, kind: 'view' },
        { branch: 'new', webUrl: `${web}/-/merge_requests/new?x`, iid: null, kind: 'create' },
        { branch: 'weird', webUrl: `${web}`, iid: null, kind: 'view' },
      ],
      issues: [issue(4), issue(1)],
      projectWebUrl: web,
    });
    assert.deepEqual(out.mergeRequests, [
      { iid: 2, title: 'MR 2', sourceBranch: 'other', targetBranch: 'main', webUrl: `${web}/-/merge_requests/2`, detectedBy: 'api' },
      { iid: 5, title: 'MR 5', sourceBranch: 'agent/fix', targetBranch: 'main', webUrl: `${web}/-/merge_requests/5`, detectedBy: 'api' },
      { iid: 9, title: null, sourceBranch: 'pushed', targetBranch: null, webUrl: `${web}/-/merge_requests/9`, detectedBy: 'push' },
    ]);
    assert.deepEqual(out.issues, [
      { iid: 1, title: 'Issue 1', webUrl: `${web}/-/issues/1` },
      { iid: 4, title: 'Issue 4', webUrl: `${web}/-/issues/4` },
    ]);
  });
});
