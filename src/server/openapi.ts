import { z } from 'zod';
import { CONNECTION_STATUSES } from '../core/index.ts';
import { ConnectBody } from './routes/connections.ts';
import { CreateKeyBody } from './routes/keys.ts';
import { ConnectionSettingsBody } from './routes/rotation.ts';
import { StartRunBody } from './routes/runs.ts';
import { PutSecretBody } from './routes/secrets.ts';
import {
  AgentResponse,
  ApiKeyResponse,
  AuditEntryResponse,
  ConnectionResponse,
  CreatedApiKeyResponse,
  DoctorReportResponse,
  ErrorResponse,
  LogEntryResponse,
  ProjectResponse,
  RunResponse,
  SecretResponse,
} from './schemas.ts';

type Schema = Record<string, unknown>;

/** A zod schema as an OpenAPI 3.1 schema object (JSON Schema 2020-12 without the `$schema` key). */
function schema(type: z.ZodType): Schema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(type, { io: 'input', unrepresentable: 'any' }) as Schema;
  return rest;
}

function json(description: string, ref: string): Schema {
  return { description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } };
}

const errors = {
  '400': json('bad input; `error.field` names the field', 'Error'),
  '401': json('missing or unknown API key', 'Error'),
  '404': json('not found, or not yours', 'Error'),
};

const id = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });

/** The OpenAPI document for `/api/v1`, built from the schemas the routes validate with. */
export function openApiDocument(version: string): Schema {
  return {
    openapi: '3.1.0',
    info: {
      title: 'forgelink API',
      version,
      description: 'Connect GitLab accounts and run AI coding agents on GitLab projects in sandboxes.',
    },
    servers: [{ url: '/api/v1' }],
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'an API key: from `forgelink admin user add`, `forgelink admin user key`, `POST /keys` or the dashboard\'s API keys page',
        },
      },
      schemas: {
        ConnectRequest: schema(ConnectBody),
        StartRunRequest: schema(StartRunBody),
        ConnectionSettingsRequest: schema(ConnectionSettingsBody),
        PutSecretRequest: schema(PutSecretBody),
        Secret: schema(SecretResponse),
        Connection: schema(ConnectionResponse),
        Project: schema(ProjectResponse),
        Run: schema(RunResponse),
        Agent: schema(AgentResponse),
        LogEntry: schema(LogEntryResponse),
        DoctorReport: schema(DoctorReportResponse),
        AuditEntry: schema(AuditEntryResponse),
        CreateKeyRequest: schema(CreateKeyBody),
        ApiKey: schema(ApiKeyResponse),
        CreatedApiKey: schema(CreatedApiKeyResponse),
        Error: schema(ErrorResponse),
      },
    },
    paths: {
      '/connections': {
        get: {
          summary: "The caller's connections",
          responses: {
            '200': {
              description: 'connections',
              content: { 'application/json': { schema: { type: 'object', properties: { connections: { type: 'array', items: { $ref: '#/components/schemas/Connection' } } } } } },
            },
            '401': errors['401'],
          },
        },
        post: {
          summary: 'Connect a GitLab account with an access token',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ConnectRequest' } } } },
          responses: { '201': json('the new connection', 'Connection'), ...errors },
        },
      },
      '/connections/{id}': {
        parameters: [id('id')],
        get: { summary: 'One connection', responses: { '200': json('the connection', 'Connection'), ...errors } },
        patch: {
          summary:
            'Connection settings: token rotation on (refused, naming the field, for OAuth and for tokens with neither api nor self_rotate) or off, its lifetime and threshold in days; the credentials mode of its runs and the run policy options it turns off',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ConnectionSettingsRequest' } } } },
          responses: { '200': json('the connection with its settings', 'Connection'), ...errors },
        },
        delete: {
          summary: 'Disconnect: delete the connection and its sealed tokens; an OAuth authorization is also revoked at GitLab',
          responses: {
            '204': { description: 'deleted (and, for OAuth, revoked at GitLab)' },
            '200': {
              description: 'deleted, but GitLab did not confirm revoking the OAuth authorization: `warnings` says what to do',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['disconnected', 'warnings'],
                    properties: {
                      disconnected: { type: 'boolean' },
                      warnings: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
                    },
                  },
                },
              },
            },
            ...errors,
          },
        },
      },
      '/connections/{id}/rotate': {
        parameters: [id('id')],
        post: {
          summary: 'Rotate the personal access token now through GitLab (POST /personal_access_tokens/self/rotate); the new token is stored before anything uses it',
          responses: {
            '200': json('the connection with its new expiry', 'Connection'),
            '409': json('runs are using the token, a rotation is under way or its outcome is unknown, or the token is revoked or expired', 'Error'),
            ...errors,
          },
        },
      },
      '/connections/{id}/check': {
        parameters: [id('id')],
        post: { summary: 'Re-validate against GitLab now', responses: { '200': json('the connection with its new status', 'Connection'), ...errors } },
      },
      '/connections/{id}/events': {
        parameters: [id('id'), { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 500, default: 20 } }],
        get: {
          summary: "The connection's status transitions, newest first: when, from, to, and why (recorded by checks, the health monitor and runs)",
          responses: {
            '200': {
              description: 'transitions',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      events: {
                        type: 'array',
                        items: {
                          type: 'object',
                          required: ['id', 'at', 'from', 'to', 'reason'],
                          properties: {
                            id: { type: 'string' },
                            at: { type: 'string', format: 'date-time' },
                            from: { type: 'string', enum: [...CONNECTION_STATUSES] },
                            to: { type: 'string', enum: [...CONNECTION_STATUSES] },
                            reason: { type: ['string', 'null'] },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
            ...errors,
          },
        },
      },
      '/connections/{id}/doctor': {
        parameters: [id('id')],
        post: {
          summary: 'Diagnose the connection step by step (DNS, policy, TCP, TLS, GitLab, subpath, token, %2F, clone URL, egress, clock)',
          responses: { '200': json('the report; `ok` is false when a step failed', 'DoctorReport'), ...errors },
        },
      },
      '/connections/{id}/projects': {
        parameters: [id('id'), { name: 'search', in: 'query', required: false, schema: { type: 'string' } }],
        get: {
          summary: 'Projects with Developer access or more, every page',
          responses: {
            '200': {
              description: 'projects',
              content: { 'application/json': { schema: { type: 'object', properties: { projects: { type: 'array', items: { $ref: '#/components/schemas/Project' } } } } } },
            },
            '403': json('the token cannot use the API', 'Error'),
            ...errors,
          },
        },
      },
      '/audit': {
        get: {
          summary: 'The audit trail, newest first: the caller\'s own entries; an administrator sees everyone\'s',
          parameters: [
            { name: 'connectionId', in: 'query', required: false, schema: { type: 'string' } },
            { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 } },
          ],
          responses: {
            '200': {
              description: 'entries',
              content: { 'application/json': { schema: { type: 'object', properties: { entries: { type: 'array', items: { $ref: '#/components/schemas/AuditEntry' } } } } } },
            },
            '400': errors['400'],
            '401': errors['401'],
          },
        },
      },
      '/keys': {
        get: {
          summary: "The caller's API keys that are not revoked, oldest first; never the keys themselves",
          responses: {
            '200': {
              description: 'keys',
              content: { 'application/json': { schema: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { $ref: '#/components/schemas/ApiKey' } } } } } },
            },
            '401': errors['401'],
          },
        },
        post: {
          summary: 'Create an API key for the caller; the answer is the only place the key is ever shown',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/CreateKeyRequest' } } } },
          responses: {
            '201': json('the new key, shown this once', 'CreatedApiKey'),
            '400': errors['400'],
            '401': errors['401'],
            '409': json('the caller has a key of that name that is not revoked (`key_name_taken`, field `name`), or 100 keys already', 'Error'),
          },
        },
      },
      '/keys/{id}': {
        parameters: [id('id')],
        delete: {
          summary: 'Revoke one of the caller\'s keys: it is refused (401) from the next request on. The key making this request may revoke itself',
          responses: { '204': { description: 'revoked' }, '401': errors['401'], '404': errors['404'] },
        },
      },
      '/agents': {
        get: {
          summary: 'The agent profiles runs may name: their image, the secrets they need and the hosts they reach',
          responses: {
            '200': {
              description: 'profiles',
              content: { 'application/json': { schema: { type: 'object', properties: { agents: { type: 'array', items: { $ref: '#/components/schemas/Agent' } } } } } },
            },
            '401': errors['401'],
          },
        },
      },
      '/workers': {
        get: {
          summary: 'The processes executing runs: id, host, capacity, runs executing now, state (running or draining), last heartbeat',
          responses: {
            '200': {
              description: 'workers',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      workers: {
                        type: 'array',
                        items: {
                          type: 'object',
                          required: ['id', 'host', 'capacity', 'running', 'state', 'startedAt', 'lastHeartbeatAt'],
                          properties: {
                            id: { type: 'string' },
                            host: { type: 'string' },
                            capacity: { type: 'integer' },
                            running: { type: 'integer' },
                            state: { type: 'string', enum: ['running', 'draining'] },
                            startedAt: { type: 'string', format: 'date-time' },
                            lastHeartbeatAt: { type: 'string', format: 'date-time' },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
            '401': errors['401'],
          },
        },
      },
      '/secrets': {
        get: {
          summary: "The caller's named secrets, by name: name, hosts, created, updated, last used (never a value)",
          responses: {
            '200': {
              description: 'secrets',
              content: { 'application/json': { schema: { type: 'object', properties: { secrets: { type: 'array', items: { $ref: '#/components/schemas/Secret' } } } } } },
            },
            '401': errors['401'],
          },
        },
      },
      '/secrets/{name}': {
        parameters: [id('name')],
        put: {
          summary:
            'Set a secret: an upper-case environment variable name that does not change how the sandbox works (not GITLAB_*, FORGELINK_*, GIT_*, LD_*, PATH, HOME, proxies…); the value is sealed at once and never returned',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/PutSecretRequest' } } } },
          responses: {
            '201': json('created', 'Secret'),
            '200': json('replaced', 'Secret'),
            '400': errors['400'],
            '401': errors['401'],
          },
        },
        delete: { summary: 'Delete a secret', responses: { '204': { description: 'deleted' }, ...errors } },
      },
      '/runs': {
        get: {
          summary: "The caller's runs, newest first",
          parameters: [{ name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 500 } }],
          responses: {
            '200': {
              description: 'runs',
              content: { 'application/json': { schema: { type: 'object', properties: { runs: { type: 'array', items: { $ref: '#/components/schemas/Run' } } } } } },
            },
            '401': errors['401'],
          },
        },
        post: {
          summary: 'Start a run',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/StartRunRequest' } } } },
          responses: { '201': json('the queued run', 'Run'), ...errors, '400': json('bad input, or a secret named in `secrets` that you have not set (`error.field` is `secrets`)', 'Error') },
        },
      },
      '/runs/{id}': {
        parameters: [id('id')],
        get: { summary: 'A run with its outputs', responses: { '200': json('the run', 'Run'), ...errors } },
      },
      '/runs/{id}/log': {
        parameters: [id('id'), { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: 0 } }],
        get: {
          summary: "The run's log, scrubbed of its secrets: JSON, or server-sent events with Accept: text/event-stream",
          responses: {
            '200': {
              description: 'log entries after `after`',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: { run: { $ref: '#/components/schemas/Run' }, entries: { type: 'array', items: { $ref: '#/components/schemas/LogEntry' } }, next: { type: 'integer' } },
                  },
                },
                'text/event-stream': { schema: { type: 'string', description: '`event: log` per entry (id = seq), then `event: end` with the run' } },
              },
            },
            ...errors,
          },
        },
      },
      '/runs/{id}/cancel': {
        parameters: [id('id')],
        post: { summary: 'Stop a queued or running run', responses: { '202': json('the run', 'Run'), '409': json('the run already ended', 'Error'), ...errors } },
      },
    },
  };
}
