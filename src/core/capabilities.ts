import type { Capabilities, Warning } from './types.ts';

/**
 * What a token can do, from its scopes. Source: `abilities_for_scopes` in GitLab's lib/gitlab/auth.rb
 * (see docs/gitlab.md): `api` is everything, `read_api` is read-only API + fetch, `read_repository`
 * is fetch, `write_repository` is fetch + push and no API at all.
 */
export function capabilitiesFromScopes(scopes: readonly string[]): Capabilities {
  const has = (scope: string) => scopes.includes(scope);
  const push = has('api') || has('write_repository');
  return {
    clone: push || has('read_api') || has('read_repository'),
    push,
    mergeRequestsViaApi: has('api'),
    // Push options create merge requests for any token that may push (GitLab docs: push options).
    mergeRequestsViaPushOptions: push,
    issues: has('api'),
    readUser: has('api') || has('read_api') || has('read_user'),
  };
}

/** Days from `today` (YYYY-MM-DD or Date) to a GitLab expiry date; negative when already past. */
export function daysUntil(expiresAt: string, now: Date): number {
  const expiry = Date.parse(`${expiresAt}T00:00:00Z`);
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Math.round((expiry - today) / 86_400_000);
}

export const EXPIRES_SOON_DAYS = 7;

/** The countdown people read: `expires in 5 days`, `expires tomorrow`, `expires today`, `expired 2 days ago`. */
export function expiryCountdown(expiresAt: string, now: Date): string {
  const days = daysUntil(expiresAt, now);
  if (days > 1) return `expires in ${days} days`;
  if (days === 1) return 'expires tomorrow';
  if (days === 0) return 'expires today';
  return `expired ${-days} day${days === -1 ? '' : 's'} ago`;
}

/**
 * The warnings a connection carries, from its scopes and expiry. Order is stable: expiry first,
 * then scope breadth, then missing abilities in the order an agent needs them.
 */
export function connectionWarnings(input: {
  scopes: readonly string[];
  expiresAt: string | null;
  kind: 'pat' | 'oauth';
  now: Date;
}): Warning[] {
  const { scopes, expiresAt, kind, now } = input;
  const caps = capabilitiesFromScopes(scopes);
  const warnings: Warning[] = [];

  if (expiresAt === null) {
    if (kind === 'pat') {
      warnings.push({
        code: 'no_expiry',
        message:
          'This token never expires. Create one with an expiry date so a leaked token stops working on its own.',
      });
    }
  } else {
    const days = daysUntil(expiresAt, now);
    if (days >= 0 && days < EXPIRES_SOON_DAYS) {
      warnings.push({
        code: 'expires_soon',
        message: `This token expires on ${expiresAt} (${days === 0 ? 'today' : `in ${days} day${days === 1 ? '' : 's'}`}). Create a new one and reconnect.`,
      });
    }
  }

  if (scopes.includes('api') && kind === 'pat') {
    warnings.push({
      code: 'broad_scope',
      message:
        'The api scope gives full read and write access to everything this account can reach. If the agent only clones and pushes, read_repository + write_repository is enough.',
    });
  }
  if (!caps.push) {
    warnings.push({
      code: 'cannot_push',
      message: 'The token cannot push: the agent can read the repository but not publish branches. Add write_repository.',
    });
  }
  if (!caps.mergeRequestsViaApi && !caps.mergeRequestsViaPushOptions) {
    warnings.push({
      code: 'cannot_open_merge_requests',
      message: 'The token cannot open merge requests, neither through the API nor with push options.',
    });
  }
  if (!caps.issues) {
    warnings.push({
      code: 'cannot_file_issues',
      message: 'The token cannot file issues: that needs the api scope.',
    });
  }
  if (!caps.readUser) {
    warnings.push({
      code: 'cannot_read_user',
      message:
        'The token cannot read the account it belongs to (read_user, read_api or api): forgelink cannot confirm whom actions are attributed to, and cannot find merge requests and issues the agent opened.',
    });
  }
  return warnings;
}

/** Scopes that allow cloning, in the words an error message uses. */
export const CLONE_SCOPES = ['api', 'read_api', 'read_repository', 'write_repository'] as const;
