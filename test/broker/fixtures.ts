import type { Decision, RunPolicy } from '../../src/broker/policy.ts';

/** A run on `Group/Sub/App` (id 42) with `main` as default branch and protected `main`, `release/*` and `stable`. */
export function runPolicy(overrides: Partial<RunPolicy> = {}): RunPolicy {
  return {
    projectId: 42,
    projectPath: 'Group/Sub/App',
    defaultBranch: 'main',
    protectedBranches: ['main', 'release/*', 'stable', '*-hotfix'],
    existingBranches: new Set(['main', 'develop', 'feature/old', 'release/1.0', 'stable', 'docs']),
    allowTags: false,
    allowMerge: false,
    readOtherProjects: false,
    ...overrides,
  };
}

export const OLD = '1'.repeat(40);
export const NEW = '2'.repeat(40);
export const ZERO = '0'.repeat(40);
export const OLD256 = 'a'.repeat(64);
export const NEW256 = 'b'.repeat(64);
export const ZERO256 = '0'.repeat(64);

/** A pkt-line: four hex digits of length (the four included) and the data. */
export function pkt(data: string | Uint8Array): Uint8Array {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const head = new TextEncoder().encode((bytes.length + 4).toString(16).padStart(4, '0'));
  return concat(head, bytes);
}

export const FLUSH = new TextEncoder().encode('0000');

export function concat(...parts: (Uint8Array | string)[]): Uint8Array {
  const bytes = parts.map((part) => (typeof part === 'string' ? new TextEncoder().encode(part) : part));
  const out = new Uint8Array(bytes.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of bytes) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A decision as the tables write it: `allow`, or the refusing rule's id. */
export function verdict(decision: Decision): string {
  return decision.allow ? 'allow' : decision.rule;
}

/**
 * A shell line for a run's agent: one GitLab REST call through the broker with the surrogate token (never in argv),
 * then `<label>:<http status>` on a line of its own for the test to read from the run's log.
 */
export function sandboxApiCall(label: string, method: string, path: string, data = ''): string {
  return `printf "PRIVATE-TOKEN: %s\\n" "$GITLAB_TOKEN" | curl -sS -H @- -X ${method} ${data} -w "\\n${label}:%{http_code}\\n" "$GITLAB_OAUTH_BASE_URL/api/v4${path}"`;
}

/** The status `sandboxApiCall(label, …)` printed in `log`, or undefined. */
export function labelled(log: string, label: string): string | undefined {
  return new RegExp(`^${label}:(\\d+)$`, 'm').exec(log)?.[1];
}
