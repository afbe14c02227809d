import { z } from 'zod';
import { CONNECTION_STATUSES, type RunStatus, type WarningCode } from '../core/index.ts';

/** The JSON held in `connections.account`. */
export const AccountJson = z.object({ id: z.number(), username: z.string(), name: z.string() });
export type AccountJson = z.infer<typeof AccountJson>;

/** The JSON held in `connections.scopes`. */
export const ScopesJson = z.array(z.string());
export type ScopesJson = z.infer<typeof ScopesJson>;

/** The JSON held in `audit_events.details`. */
export const DetailsJson = z.record(z.string(), z.unknown());
export type DetailsJson = z.infer<typeof DetailsJson>;

export const ConnectionKindColumn = z.enum(['pat', 'oauth']);
export const ConnectionStatusColumn = z.enum(CONNECTION_STATUSES);
export const ProviderColumn = z.literal('gitlab');

const WARNING_CODES = [
  'no_expiry',
  'expires_soon',
  'broad_scope',
  'cannot_push',
  'cannot_open_merge_requests',
  'cannot_file_issues',
  'cannot_read_user',
  'default_branch_unprotected',
] as const satisfies readonly WarningCode[];

const RUN_STATUSES = [
  'queued',
  'preparing',
  'cloning',
  'running',
  'collecting',
  'succeeded',
  'failed',
  'canceled',
  'timed_out',
] as const satisfies readonly RunStatus[];

// Compile-time completeness: adding a code or status to core without listing it here is a type error.
type Missing<All, Listed> = Exclude<All, Listed> extends never ? true : never;
const _everyWarningCode: Missing<WarningCode, (typeof WARNING_CODES)[number]> = true;
const _everyRunStatus: Missing<RunStatus, (typeof RUN_STATUSES)[number]> = true;
void _everyWarningCode;
void _everyRunStatus;

export const RunStatusColumn = z.enum(RUN_STATUSES);
export const LogStreamColumn = z.enum(['stdout', 'stderr', 'system']);

/** JSON arrays of strings: `runs.command`, `runs.allow_hosts`. */
export const StringsJson = z.array(z.string());

export const WarningsJson = z.array(z.object({ code: z.enum(WARNING_CODES), message: z.string() }));

export const RunErrorJson = z.object({ code: z.string(), message: z.string() });

export const RepoCacheColumn = z.enum(['cold', 'warm', 'off']);
export const CloneFilterColumn = z.enum(['blob:none']);

export const EgressJson = z.object({ allowed: z.array(z.string()), refused: z.array(z.string()) });
export const CredentialsColumn = z.enum(['brokered', 'direct']);
/** The run policy's options as the broker applied them to a run. */
export const PolicyOptionsJson = z.object({ allowTags: z.boolean(), allowMerge: z.boolean(), readOtherProjects: z.boolean() });
/** `runs.policy`; runs from before migration 0014's change carry no `options` (read as null). */
export const PolicyJson = z.object({
  refused: z.array(z.object({ at: z.string(), method: z.string(), target: z.string(), rule: z.string(), message: z.string() })),
  options: PolicyOptionsJson.nullable().default(null),
});
/** `connections.policy`: the options a connection turns off for its runs. */
export const ConnectionPolicyJson = z.object({ allowTags: z.literal(false).optional(), allowMerge: z.literal(false).optional(), readOtherProjects: z.literal(false).optional() }).strict();

export const OutputsJson = z.object({
  branches: z.array(z.object({ name: z.string(), sha: z.string(), created: z.boolean(), webUrl: z.string() })),
  mergeRequests: z.array(
    z.object({
      iid: z.number(),
      title: z.string().nullable(),
      sourceBranch: z.string(),
      targetBranch: z.string().nullable(),
      webUrl: z.string(),
      detectedBy: z.enum(['api', 'push']),
    }),
  ),
  issues: z.array(z.object({ iid: z.number(), title: z.string(), webUrl: z.string() })),
});
