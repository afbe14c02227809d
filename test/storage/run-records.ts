import { randomUUID } from 'node:crypto';
import type { Run } from '../../src/core/index.ts';

/** A queued run of `userId` with every optional field empty. */
export function newRun(userId: string, overrides: Partial<Run> = {}): Run {
  return {
    id: randomUUID(),
    userId,
    connectionId: randomUUID(),
    project: 'group/sub/app',
    projectId: null,
    projectPath: null,
    projectWebUrl: null,
    branch: null,
    baseBranch: null,
    agent: 'custom',
    image: { ref: 'host', digest: null },
    command: ['sh', '-c', 'echo hi'],
    allowHosts: [],
    secrets: [],
    timeoutMs: 600_000,
    status: 'queued',
    error: null,
    exitCode: null,
    warnings: [],
    outputs: { branches: [], mergeRequests: [], issues: [] },
    egress: { allowed: [], refused: [] },
    depth: null,
    filter: null,
    repoCache: null,
    timings: { readyMs: null, cloneMs: null },
    credentials: 'brokered',
    policy: { refused: [], options: null },
    createdAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    worker: null,
    ...overrides,
  };
}
