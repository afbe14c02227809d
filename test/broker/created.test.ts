import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createdByWrite, type BrokerRecord } from '../../src/broker/index.ts';

const project = { id: 7, path: 'acme/app', basePath: '/gitlab' };
const write = (method: string, path: string, status: number | null, createdIid?: number, allowed = true): BrokerRecord => ({
  at: '2026-01-01T00:00:00.000Z',
  method,
  target: `gitlab.example:443${path}`,
  allowed,
  rule: null,
  message: null,
  status,
  ...(createdIid === undefined ? {} : { createdIid }),
});

test('createdByWrite: which writes created an issue or merge request of the run project', () => {
  const cases: [BrokerRecord, ReturnType<typeof createdByWrite>][] = [
    [write('POST', '/gitlab/api/v4/projects/7/issues', 201, 3), { kind: 'issue', iid: 3 }],
    [write('POST', '/gitlab/api/v4/projects/acme%2Fapp/merge_requests', 201, 4), { kind: 'merge_request', iid: 4 }],
    [write('POST', '/gitlab/api/v4/projects/7/issues/', 201), { kind: 'issue', iid: null }],
    [write('POST', '/gitlab/api/graphql', 200), { kind: 'graphql' }],
    // Not a creation, not this project, not answered 201, refused, outside the base path.
    [write('POST', '/gitlab/api/v4/projects/7/issues/3/notes', 201, 9), null],
    [write('PUT', '/gitlab/api/v4/projects/7/issues', 201, 3), null],
    [write('POST', '/gitlab/api/v4/projects/8/issues', 201, 3), null],
    [write('POST', '/gitlab/api/v4/projects/acme%2Fother/merge_requests', 201, 3), null],
    [write('POST', '/gitlab/api/v4/projects/7/issues', 400), null],
    [write('POST', '/gitlab/api/v4/projects/7/issues', 201, 3, false), null],
    [write('POST', '/api/v4/projects/7/issues', 201, 3), null],
    [write('POST', '/gitlab/api/graphql', null), null],
  ];
  for (const [record, expected] of cases) assert.deepEqual(createdByWrite(record, project), expected, record.target);
});
