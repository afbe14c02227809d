import { z } from 'zod';
import { CONNECTION_STATUSES } from '../core/index.ts';
// The run's JSON columns are parsed with these very schemas, so the documented shape is the stored one.
import { EgressJson, OutputsJson, RunErrorJson } from '../storage/index.ts';

/**
 * The shapes the API answers with (docs/contract.md). The OpenAPI document is generated from these and from the
 * request schemas the routes validate with; the route tests check real responses against them.
 */
const Warning = z.object({ code: z.string(), message: z.string() });

export const ConnectionResponse = z.object({
  id: z.string(),
  provider: z.literal('gitlab'),
  kind: z.enum(['pat', 'oauth']),
  baseUrl: z.string().describe('the instance URL, subpath included'),
  host: z.string(),
  label: z.string(),
  account: z.object({ id: z.number(), username: z.string(), name: z.string() }).nullable(),
  scopes: z.array(z.string()),
  expiresAt: z.string().nullable().describe('YYYY-MM-DD, or null when the token never expires (always null for OAuth: renewed)'),
  tokenExpiresAt: z.string().nullable().describe('OAuth: when the current access token expires (forgelink renews it); null for personal access tokens'),
  status: z.enum(CONNECTION_STATUSES),
  statusReason: z.string().nullable(),
  capabilities: z.object({
    clone: z.boolean(),
    push: z.boolean(),
    mergeRequestsViaApi: z.boolean(),
    mergeRequestsViaPushOptions: z.boolean(),
    issues: z.boolean(),
    readUser: z.boolean(),
  }),
  warnings: z.array(Warning),
  instanceVersion: z.string().nullable(),
  hasCustomCa: z.boolean(),
  rotation: z
    .object({
      enabled: z.boolean(),
      lifetimeDays: z.number().describe('how long each new token lives'),
      thresholdDays: z.number().describe('rotate when the token has this many days left, or fewer'),
      lastRotatedAt: z.string().nullable(),
    })
    .nullable()
    .describe('self-rotation of a personal access token (PATCH rotation to change it); null: never configured, off'),
  credentials: z
    .enum(['brokered', 'direct'])
    .nullable()
    .describe('how runs on this connection hold credentials when a run does not say; null: the server\'s (FORGELINK_CREDENTIALS)'),
  policy: z
    .object({ allowTags: z.literal(false).optional(), allowMerge: z.literal(false).optional(), readOtherProjects: z.literal(false).optional() })
    .describe('the run policy options this connection turns off for its runs; {}: as the operator allows'),
  checkedAt: z.string(),
  createdAt: z.string(),
});

export const ProjectResponse = z.object({
  id: z.number(),
  pathWithNamespace: z.string(),
  defaultBranch: z.string().nullable(),
  webUrl: z.string(),
  httpUrlToRepo: z.string(),
  accessLevel: z.number().nullable(),
});

export const AgentResponse = z.object({
  name: z.string(),
  image: z.string(),
  secrets: z.array(z.string()).describe('names of the secrets a run of this profile needs'),
  hosts: z.array(z.string()).describe('origins its runs may reach besides GitLab'),
});

export const RunResponse = z.object({
  id: z.string(),
  connectionId: z.string(),
  project: z.string(),
  projectId: z.number().nullable(),
  projectPath: z.string().nullable(),
  projectWebUrl: z.string().nullable(),
  branch: z.string().nullable(),
  baseBranch: z.string().nullable(),
  agent: z.string().describe('the agent profile the run used; custom: its own command'),
  image: z.object({ ref: z.string(), digest: z.string().nullable() }).nullable().describe('the root filesystem; ref host: the host\'s /usr'),
  command: z.array(z.string()),
  allowHosts: z.array(z.string()),
  secrets: z.array(z.string()).describe('names of the secrets the run receives as environment variables (never their values)'),
  timeoutSeconds: z.number(),
  status: z.enum(['queued', 'preparing', 'cloning', 'running', 'collecting', 'succeeded', 'failed', 'canceled', 'timed_out']),
  error: RunErrorJson.nullable(),
  exitCode: z.number().nullable(),
  warnings: z.array(Warning),
  outputs: OutputsJson,
  egress: EgressJson,
  depth: z.number().nullable().describe('git clone --depth the run asked for; null: full history'),
  filter: z.enum(['blob:none']).nullable().describe('git clone --filter the run asked for'),
  repoCache: z
    .enum(['cold', 'warm', 'off'])
    .nullable()
    .describe('the repository cache: warm (the workspace borrowed from an existing mirror), cold (the mirror was built first), off; null before the clone'),
  timings: z
    .object({
      readyMs: z.number().nullable().describe('from the request to the agent starting'),
      cloneMs: z.number().nullable().describe('the clone step: updating the mirror and making the workspace'),
    })
    .describe('null values until known'),
  credentials: z.enum(['brokered', 'direct']).describe('brokered: the sandbox held surrogates and the broker applied the run\'s policy; direct: the real token'),
  policy: z
    .object({
      refused: z.array(z.object({ at: z.string(), method: z.string(), target: z.string(), rule: z.string(), message: z.string() })),
      options: z
        .object({ allowTags: z.boolean(), allowMerge: z.boolean(), readOtherProjects: z.boolean() })
        .nullable()
        .describe('the options the broker applied: the operator\'s, narrowed by the connection and the run, fixed at the start; null for direct runs'),
    })
    .describe('what the broker refused (brokered runs) and the options it applied'),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  worker: z.string().nullable().describe('the worker process that took the run (forgelink workers list); null while queued'),
});

export const SecretResponse = z.object({
  name: z.string(),
  hosts: z.array(z.string()).describe('origins (host:port) the secret is meant for'),
  createdAt: z.string(),
  updatedAt: z.string().describe('when the value was last set'),
  lastUsedAt: z.string().nullable().describe('when a run last received it; null: never'),
});

export const LogEntryResponse = z.object({
  seq: z.number(),
  at: z.string(),
  stream: z.enum(['stdout', 'stderr', 'system']),
  text: z.string(),
});

export const ErrorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().optional() }),
});

export const DoctorReportResponse = z.object({
  connectionId: z.string(),
  baseUrl: z.string(),
  checkedAt: z.string(),
  ok: z.boolean(),
  steps: z.array(
    z.object({
      id: z.enum(['dns', 'address', 'tcp', 'tls', 'gitlab', 'subpath', 'token', 'encoded_path', 'clone_url', 'egress', 'clock']),
      title: z.string(),
      status: z.enum(['pass', 'warn', 'fail', 'skip']),
      message: z.string(),
    }),
  ),
});

export const AuditEntryResponse = z.object({
  id: z.string(),
  at: z.string(),
  ownerId: z.string(),
  actor: z.string(),
  action: z.string(),
  connectionId: z.string().nullable(),
  runId: z.string().nullable(),
  reason: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});

export const ApiKeyResponse = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe("the key's first characters (flk_ab12), to tell keys apart; flk_ for keys made before key management"),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable().describe('recorded to the minute; null when never used'),
});

export const CreatedApiKeyResponse = z.object({
  id: z.string(),
  name: z.string(),
  key: z.string().describe('the key itself: shown in this answer only, never again'),
  createdAt: z.string(),
});
