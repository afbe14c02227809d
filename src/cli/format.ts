import { refusalReason, type AuditEntry, type ConnectionView, type Project, type RunOutputs } from '../core/index.ts';
// The two pure helpers straight from their files: all of core/index.ts (crypto, address parsing) would more than
// double the start-up of a command that only prints a list (docs/architecture.md, "Direction of imports").
import { daysUntil, expiryCountdown } from '../core/capabilities.ts';
import { quoteCommandLine, shortCommandLine } from '../core/command-line.ts';
import type { ConnectionEventView } from '../connections/index.ts';
import type { DoctorReport } from '../doctor/index.ts';
import type { RunView } from '../runs/index.ts';
import { rotationText, runDefaultsText } from './rotation-format.ts';

const CAPABILITY_WORDS: Record<keyof ConnectionView['capabilities'], string> = {
  clone: 'clone',
  push: 'push',
  mergeRequestsViaApi: 'open merge requests (API)',
  mergeRequestsViaPushOptions: 'open merge requests (push options)',
  issues: 'file issues',
  readUser: 'read its account',
};

function accountText(connection: ConnectionView): string {
  const { account } = connection;
  return account === null ? 'account unknown' : `@${account.username} (${account.name})`;
}

export function expiryText(expiresAt: string | null, now: Date): string {
  if (expiresAt === null) return 'never';
  const days = daysUntil(expiresAt, now);
  if (days < 0) return `${expiresAt} (expired)`;
  if (days === 0) return `${expiresAt} (today)`;
  return `${expiresAt} (in ${days} day${days === 1 ? '' : 's'})`;
}

/**
 * The countdown `connections list` shows (`expires in 5 days`, `no expiry`); null for OAuth, whose authorization
 * has no date (its access tokens are renewed on their own).
 */
export function countdownText(connection: Pick<ConnectionView, 'expiresAt' | 'kind'>, now: Date): string | null {
  if (connection.expiresAt === null) return connection.kind === 'oauth' ? null : 'no expiry';
  return expiryCountdown(connection.expiresAt, now);
}

export function connectionLine(connection: ConnectionView, now: Date): string {
  return [connection.id, connection.host, accountText(connection), connection.kind, connection.status, countdownText(connection, now), connection.label]
    .filter((part) => part !== null)
    .join('  ');
}

/** The last status transitions under `connections show`, newest first. */
export function connectionEventsText(events: readonly ConnectionEventView[]): string {
  if (events.length === 0) return '  Status history: no change since it was connected';
  const lines = ['  Status history:'];
  for (const event of events) lines.push(`    ${event.at}  ${event.from} → ${event.to}${event.reason === null ? '' : `  ${event.reason}`}`);
  return lines.join('\n');
}

export function connectionDetails(connection: ConnectionView, now: Date): string {
  const entries = Object.entries(connection.capabilities) as [keyof ConnectionView['capabilities'], boolean][];
  const can = entries.filter(([, yes]) => yes).map(([key]) => CAPABILITY_WORDS[key]);
  const cannot = entries.filter(([, yes]) => !yes).map(([key]) => CAPABILITY_WORDS[key]);
  const lines = [
    `${connection.id}  ${connection.label}`,
    `  Instance:   ${connection.baseUrl}${connection.instanceVersion ? ` (GitLab ${connection.instanceVersion})` : ''}${connection.hasCustomCa ? ', private CA' : ''}`,
    `  Account:    ${accountText(connection)}${connection.account ? ` id ${connection.account.id}` : ''}`,
    `  Kind:       ${connection.kind === 'pat' ? 'access token' : 'OAuth'}`,
    `  Status:     ${connection.status}${connection.statusReason ? ` — ${connection.statusReason}` : ''}`,
    `  Scopes:     ${connection.scopes.join(', ') || 'none'}`,
    `  Expires:    ${expiryText(connection.expiresAt, now)}`,
    `  Rotation:   ${rotationText(connection)}`,
    `  Runs:       ${runDefaultsText(connection)}`,
    `  Agent can:  ${can.join(', ') || 'nothing'}`,
  ];
  if (cannot.length > 0) lines.push(`  Cannot:     ${cannot.join(', ')}`);
  lines.push(`  Checked:    ${connection.checkedAt}`);
  if (connection.warnings.length > 0) {
    lines.push('  Warnings:');
    for (const warning of connection.warnings) lines.push(`    ! ${warning.code}: ${warning.message}`);
  }
  return lines.join('\n');
}

export function projectLine(project: Project): string {
  return `${project.pathWithNamespace}  ${project.defaultBranch ?? '(empty)'}  ${project.webUrl}`;
}

/** `1 MR, 1 branch, 1 issue`, or `none`. */
export function outputsText(outputs: RunOutputs): string {
  const parts: string[] = [];
  const count = (n: number, one: string, many: string) => {
    if (n > 0) parts.push(`${n} ${n === 1 ? one : many}`);
  };
  count(outputs.mergeRequests.length, 'MR', 'MRs');
  count(outputs.branches.length, 'branch', 'branches');
  count(outputs.issues.length, 'issue', 'issues');
  return parts.length === 0 ? 'none' : parts.join(', ');
}

const COMMAND_WIDTH = 40;

/** `runs list`: one row per run under a header, columns padded; the command cut to fit one line. */
export function runsTable(runs: readonly RunView[]): string {
  const rows = [
    ['ID', 'STATUS', 'PROJECT', 'OUTPUTS', 'CREATED', 'COMMAND'],
    ...runs.map((run) => [run.id, run.status, run.projectPath ?? run.project, outputsText(run.outputs), run.createdAt.slice(0, 19).replace('T', ' '), shortCommandLine(run.command, COMMAND_WIDTH)]),
  ];
  return columns(rows);
}

/** Rows of cells (the first the header) as lines, each column padded to its widest cell. */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, column) => Math.max(...rows.map((row) => [...(row[column] ?? '')].length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function runDetails(run: RunView): string {
  const lines = [
    `${run.id}  ${run.status}${run.error ? ` — ${run.error.message}` : ''}`,
    `  Project:    ${run.projectPath ?? run.project}${run.baseBranch ? ` (${run.baseBranch})` : run.branch ? ` (${run.branch})` : ''}`,
    `  Command:    ${quoteCommandLine(run.command)}`,
    `  Connection: ${run.connectionId}`,
    `  Started:    ${run.startedAt ?? 'not yet'}${run.finishedAt ? `, finished ${run.finishedAt}` : ''}`,
  ];
  if (run.exitCode !== null) lines.push(`  Exit code:  ${run.exitCode}`);
  if (run.egress.allowed.length + run.egress.refused.length > 0) {
    lines.push(`  Network:    reached ${run.egress.allowed.join(', ') || 'nothing'}${run.egress.refused.length ? `; refused ${run.egress.refused.join(', ')}` : ''}`);
  }
  // Runs made before the broker existed may come from an older server without these fields.
  if (run.credentials !== undefined) lines.push(`  Credentials: ${run.credentials}`);
  const options = run.policy?.options ?? null;
  if (options !== null) {
    const allowed = [options.allowTags ? 'tags' : null, options.allowMerge ? 'merge' : null, options.readOtherProjects ? 'reading other projects' : null].filter((item) => item !== null);
    lines.push(`  Allowed:    ${allowed.length === 0 ? 'its own branches only' : `its own branches, ${allowed.join(', ')}`}`);
  }
  const refused = run.policy?.refused ?? [];
  if (refused.length > 0) {
    lines.push(`  Policy:     refused ${refused.length === 1 ? '1 request' : `${refused.length} requests`}`);
    for (const refusal of refused) lines.push(`    ${refusal.method} ${refusal.target} (${refusal.rule}): ${refusalReason(refusal)}`);
  } else if (run.credentials === 'brokered') {
    lines.push('  Policy:     nothing refused');
  }
  for (const warning of run.warnings) lines.push(`  ! ${warning.code}: ${warning.message}`);
  const { branches, mergeRequests, issues } = run.outputs;
  if (branches.length + mergeRequests.length + issues.length === 0) {
    lines.push('  Outputs:    none');
  } else {
    lines.push('  Outputs:');
    for (const branch of branches) lines.push(`    branch ${branch.name} ${branch.sha.slice(0, 12)}${branch.created ? ' (new)' : ' (updated)'}  ${branch.webUrl}`);
    for (const mr of mergeRequests) lines.push(`    merge request !${mr.iid} ${mr.title ?? `from ${mr.sourceBranch}`}  ${mr.webUrl}`);
    for (const issue of issues) lines.push(`    issue #${issue.iid} ${issue.title}  ${issue.webUrl}`);
  }
  return lines.join('\n');
}

const MARKS = { pass: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' } as const;

export function doctorText(report: DoctorReport): string {
  const width = Math.max(...report.steps.map((step) => step.title.length));
  return [
    `Doctor for ${report.connectionId} (${report.baseUrl}): ${report.ok ? 'no problem found' : 'problems found'}`,
    ...report.steps.map((step) => `  ${MARKS[step.status]}  ${step.title.padEnd(width)}  ${step.message}`),
  ].join('\n');
}

export function auditLine(entry: AuditEntry): string {
  const keyId = typeof entry.details.keyId === 'string' ? entry.details.keyId : null;
  const about = [entry.connectionId, entry.runId, keyId].filter((value) => value !== null).join(' ');
  return [entry.at, entry.action.padEnd(25), about, entry.reason ? `(${entry.reason})` : '', entry.actor === entry.ownerId ? '' : `by ${entry.actor}`]
    .filter((part) => part !== '')
    .join('  ');
}
