import { daysUntil, type ConnectionView, type Project } from '../core/index.ts';

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

export function connectionLine(connection: ConnectionView): string {
  return [connection.id, connection.host, accountText(connection), connection.kind, connection.status, connection.label]
    .join('  ');
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
