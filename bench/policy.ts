/**
 * What the run policy adds to one brokered request (docs/security.md, "Run policy"): the decision alone, beside
 * parsing the same request with the platform's own parsers, so the figure reads as "how much on top".
 */
import { performance } from 'node:perf_hooks';
import { decideGitLabRequest, decideReceivePack, parseReceivePackCommands, type RunPolicy } from '../src/broker/policy.ts';

type Row = (name: string, value: string, baselineName: string, baseline: string, extra?: string) => void;

function medianMicros(times: number, run: () => unknown): number {
  const samples: number[] = [];
  for (let i = 0; i < times; i += 1) {
    const started = performance.now();
    run();
    samples.push((performance.now() - started) * 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? 0;
}

function pkt(text: string): string {
  return `${(Buffer.byteLength(text) + 4).toString(16).padStart(4, '0')}${text}`;
}

export function policyDecisions(row: Row): void {
  const policy: RunPolicy = {
    projectId: 42,
    projectPath: 'group/sub/app',
    defaultBranch: 'main',
    protectedBranches: ['main', 'release/*', 'stable'],
    existingBranches: new Set(Array.from({ length: 500 }, (_, i) => `branch-${i}`)),
    allowTags: false,
    allowMerge: false,
    readOtherProjects: false,
  };
  const times = 5000;
  const body = JSON.stringify({ branch: 'agent/fix', start_branch: 'main', commit_message: 'fix', actions: Array.from({ length: 20 }, (_, i) => ({ action: 'update', file_path: `src/f${i}.ts`, content: 'x'.repeat(2000) })) });
  const commit = { method: 'POST', path: '/api/v4/projects/group%2Fsub%2Fapp/repository/commits', body, contentType: 'application/json' };
  const decided = medianMicros(times, () => decideGitLabRequest(policy, commit));
  const parsed = medianMicros(times, () => JSON.parse(body));
  row('policy: REST commit, 40 KB JSON (median)', `${decided.toFixed(1)} µs`, 'JSON.parse of the body', `${parsed.toFixed(1)} µs`);

  const graphql = JSON.stringify({ query: `query { project(fullPath: "group/sub/app") { mergeRequests(first: 20) { nodes { iid title author { username } } } } }` });
  const query = medianMicros(times, () => decideGitLabRequest(policy, { method: 'POST', path: '/api/graphql', body: graphql, contentType: 'application/json' }));
  const queryParsed = medianMicros(times, () => JSON.parse(graphql));
  row('policy: GraphQL query (median)', `${query.toFixed(1)} µs`, 'JSON.parse of the body', `${queryParsed.toFixed(1)} µs`);

  const zero = '0'.repeat(40);
  const id = 'a'.repeat(40);
  const lines = Array.from({ length: 100 }, (_, i) => pkt(`${zero} ${id} refs/heads/agent/topic-${i}${i === 0 ? '\0report-status side-band-64k agent=git/2.50' : ''}`));
  const head = new TextEncoder().encode(`${lines.join('')}0000PACK`);
  const push = medianMicros(times, () => decideReceivePack(policy, parseReceivePackCommands(head)));
  const copy = medianMicros(times, () => new TextDecoder().decode(head));
  row('policy: push of 100 refs, parse + decide', `${push.toFixed(1)} µs`, 'decoding the same bytes', `${copy.toFixed(1)} µs`);
}
