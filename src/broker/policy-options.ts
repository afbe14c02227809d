/**
 * Where a run's policy options come from (docs/security.md, "Run policy"): the operator's config
 * (FORGELINK_POLICY) sets what any run may do; a connection may lower that for its runs; a run may lower it
 * further. Nothing below the operator can raise an option the operator left off.
 */
import { z } from 'zod';
import { InputError, type PolicyOptions, type PolicyOverrides } from '../core/index.ts';

export type { PolicyOptions };

/** What a run (or a connection) asks for: an option left out inherits; `false` narrows; `true` only confirms. */
export type RunPolicyRequest = PolicyOverrides;

/** The shape of FORGELINK_POLICY, of a connection's stored policy and of `policy` in `POST /runs`; unknown keys are errors. */
export const PolicyOptionsSchema = z
  .object({ allowTags: z.boolean().optional(), allowMerge: z.boolean().optional(), readOtherProjects: z.boolean().optional() })
  .strict();

/** Nothing beyond the run's own project and branches unless the operator says so. */
export const DEFAULT_POLICY_OPTIONS: PolicyOptions = Object.freeze({ allowTags: false, allowMerge: false, readOtherProjects: false });

const NAMES = ['allowTags', 'allowMerge', 'readOtherProjects'] as const;

/**
 * The options a run gets: each is on only when the operator allows it, the connection (when it says) allows it and
 * the run (when it says) asks for it. A run asking for an option that is off above it is an InputError naming
 * `policy.<option>`, never silently narrowed: the caller should know it did not get what it asked for.
 */
export function resolvePolicyOptions(
  operatorDefaults: PolicyOptions,
  connectionDefaults: RunPolicyRequest | null | undefined,
  runRequest: RunPolicyRequest | null | undefined,
): PolicyOptions {
  const resolved: PolicyOptions = { ...DEFAULT_POLICY_OPTIONS };
  for (const name of NAMES) {
    const byOperator = operatorDefaults[name];
    const byConnection = connectionDefaults?.[name] ?? true;
    const ceiling = byOperator && byConnection;
    const asked = runRequest?.[name];
    if (asked === true && !ceiling) {
      const who = byOperator ? "this connection's policy" : "the operator's policy (FORGELINK_POLICY)";
      throw new InputError('policy_not_allowed', `policy.${name}: ${who} does not allow it, and a run may only narrow the policy`, { field: `policy.${name}` });
    }
    resolved[name] = asked ?? ceiling;
  }
  return resolved;
}
