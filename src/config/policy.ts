import { z } from 'zod';

/** What the operator lets runs do beyond their own project's branches (FORGELINK_POLICY); everything off by default. */
export type OperatorPolicy = { allowTags: boolean; allowMerge: boolean; readOtherProjects: boolean };

const OperatorPolicySchema = z
  .object({ allowTags: z.boolean().optional(), allowMerge: z.boolean().optional(), readOtherProjects: z.boolean().optional() })
  .strict();

/**
 * FORGELINK_POLICY: a JSON object such as `{"allowTags":true}`; a key left out stays off. A run can only narrow
 * these (docs/security.md, "Run policy"). Returns the problem as a sentence instead when the value is wrong.
 */
export function readOperatorPolicy(raw: string | undefined): OperatorPolicy | { problem: string } {
  const policy: OperatorPolicy = { allowTags: false, allowMerge: false, readOtherProjects: false };
  if (raw === undefined) return policy;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { problem: 'is not valid JSON' };
  }
  const result = OperatorPolicySchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : '');
    return { problem: `expected {"allowTags","allowMerge","readOtherProjects"} with true or false: ${where === '' ? '' : `${where}: `}${issue?.message ?? ''}`.trim() };
  }
  return { ...policy, ...result.data };
}
