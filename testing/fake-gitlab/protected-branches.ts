import type {
  FakeAccessRule,
  FakeProject,
  FakeProtectedBranch,
  FakeState,
  ProtectedAccessLevel,
} from './state.ts';

export interface ProtectOptions {
  /** Default 40 (Maintainer), GitLab's default for both levels (doc/api/protected_branches.md). */
  pushAccessLevel?: ProtectedAccessLevel;
  mergeAccessLevel?: ProtectedAccessLevel;
  allowForcePush?: boolean;
  codeOwnerApprovalRequired?: boolean;
}

const LEVELS: readonly number[] = [0, 30, 40, 60];

function rule(state: FakeState, accessLevel: ProtectedAccessLevel): FakeAccessRule {
  if (!LEVELS.includes(accessLevel)) throw new Error(`access level must be 0, 30, 40 or 60, got ${accessLevel}`);
  return { id: state.nextId.accessRule++, accessLevel };
}

/** Adds a protected branch rule (a name or a `*` wildcard); one rule per name, as GitLab allows. */
export function protectBranch(
  state: FakeState,
  project: FakeProject,
  name: string,
  options: ProtectOptions = {},
): FakeProtectedBranch {
  if (project.protectedBranches.some((b) => b.name === name)) {
    throw new Error(`Protected branch '${name}' already exists`);
  }
  const protectedBranch: FakeProtectedBranch = {
    id: state.nextId.protectedBranch++,
    name,
    pushAccessLevels: [rule(state, options.pushAccessLevel ?? 40)],
    mergeAccessLevels: [rule(state, options.mergeAccessLevel ?? 40)],
    allowForcePush: options.allowForcePush ?? false,
    codeOwnerApprovalRequired: options.codeOwnerApprovalRequired ?? false,
  };
  project.protectedBranches.push(protectedBranch);
  return protectedBranch;
}

export function unprotectBranch(project: FakeProject, name: string): void {
  const index = project.protectedBranches.findIndex((b) => b.name === name);
  if (index === -1) throw new Error(`no protected branch ${name}`);
  project.protectedBranches.splice(index, 1);
}

/**
 * GitLab's RefMatcher for protected refs: a name without `*` matches itself; `*` matches any run of
 * characters, slashes included (doc/user/project/repository/branches/protected.md, wildcards).
 */
export function ruleMatches(ruleName: string, branch: string): boolean {
  if (!ruleName.includes('*')) return ruleName === branch;
  const pattern = ruleName.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*?');
  return new RegExp(`^${pattern}$`).test(branch);
}

export function matchingRules(project: FakeProject, branch: string): FakeProtectedBranch[] {
  return project.protectedBranches.filter((b) => ruleMatches(b.name, branch));
}

export function isProtected(project: FakeProject, branch: string): boolean {
  return matchingRules(project, branch).length > 0;
}

/** Role-based ProtectedRefAccess#check_access: "No one" never, admin only for admins, else the member level. */
function grants(accessRule: FakeAccessRule, memberLevel: number): boolean {
  if (accessRule.accessLevel === 0 || accessRule.accessLevel === 60) return false;
  return memberLevel >= accessRule.accessLevel;
}

/**
 * Gitlab::UserAccess#can_push_to_branch?: an unprotected branch needs `push_code` (Developer); a protected
 * one needs a push access level of any matching rule to let the member in.
 */
export function canPushToBranch(project: FakeProject, memberLevel: number, branch: string): boolean {
  if (project.archived || memberLevel < 30) return false;
  const rules = matchingRules(project, branch);
  if (rules.length === 0) return true;
  return rules.some((r) => r.pushAccessLevels.some((a) => grants(a, memberLevel)));
}

export function canMergeToBranch(project: FakeProject, memberLevel: number, branch: string): boolean {
  if (project.archived || memberLevel < 30) return false;
  const rules = matchingRules(project, branch);
  if (rules.length === 0) return true;
  return rules.some((r) => r.mergeAccessLevels.some((a) => grants(a, memberLevel)));
}

/** ProtectedBranch.allow_force_push?: every matching rule must allow it. */
export function allowsForcePush(project: FakeProject, branch: string): boolean {
  const rules = matchingRules(project, branch);
  return rules.length > 0 && rules.every((r) => r.allowForcePush);
}

/** ProtectedBranch.developers_can?: true when a matching rule names the Developer level; false when unprotected. */
export function developersCan(project: FakeProject, action: 'push' | 'merge', branch: string): boolean {
  const rules = matchingRules(project, branch);
  if (rules.length === 0) return false;
  return rules.some((r) =>
    (action === 'push' ? r.pushAccessLevels : r.mergeAccessLevels).some((a) => a.accessLevel === 30),
  );
}
