import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { readAgentProfiles } from './agents.ts';
import { readOperatorPolicy, type OperatorPolicy } from './policy.ts';
import { ForgelinkError, parseUpstreamProxy, type AgentProfile, type UpstreamProxy, invalidAllowEntry, isLoopbackHostname, normaliseBaseUrl, normaliseOrigin, parseByteSize } from '../core/index.ts';

/** Everything forgelink reads from its environment, read once: nothing else reads `process.env` (docs/contract.md). */
export type Config = {
  dataDir: string;
  /** FORGELINK_IMAGE_DIR: the run image store (default `<dataDir>/images`). */
  imageDir: string;
  databaseUrl: string | null;
  masterKey: { masterKey: string | undefined; masterKeyFile: string | undefined };
  outboundAllow: string[];
  /** FORGELINK_UPSTREAM_PROXY: the HTTP CONNECT proxy every outbound connection goes through; null: direct. */
  upstreamProxy: UpstreamProxy | null;
  allowHttp: boolean;
  listen: { host: string; port: number };
  publicUrl: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** FORGELINK_LOG_FORMAT; null: readable lines on a terminal, JSON lines otherwise. */
  logFormat: 'json' | 'pretty' | null;
  gitlabOAuthApps: GitLabOAuthApp[];
  /** Scopes every OAuth authorization asks for (FORGELINK_GITLAB_OAUTH_SCOPES). */
  gitlabOAuthScopes: string[];
  runs: {
    concurrency: number;
    defaultTimeoutMs: number;
    maxTimeoutMs: number;
    extraHosts: string[];
    userHostPatterns: string[];
    /** Host directories mounted read-only at the same path in every sandbox (where agents are installed). */
    sandboxMounts: string[];
    /** A run's memory cap (FORGELINK_RUN_MEMORY_MAX) and disk cap (FORGELINK_RUN_DISK_MAX), in bytes. */
    memoryMaxBytes: number;
    diskMaxBytes: number;
    /** The repository cache (FORGELINK_REPO_CACHE, FORGELINK_REPO_CACHE_MAX): a mirror per project under `<data dir>/repo-cache`. */
    repoCache: { enabled: boolean; maxBytes: number };
    /** A run's CPU cap (FORGELINK_RUN_CPU_MAX, in CPUs) as thousandths of a CPU; null: no cap. */
    cpuMillicores: number | null;
    /** The CPU weight of all runs together against forgelink's 100 (FORGELINK_RUN_CPU_WEIGHT, 1–10000, default 20). */
    cpuWeight: number | null;
    /** The nice value sandboxed processes start at (FORGELINK_RUN_NICE, 0–19, default 10; 0 for none). */
    nice: number;
    /** FORGELINK_CREDENTIALS: how runs that do not choose hold their credentials (docs/security.md, "Credential broker"). */
    credentials: 'brokered' | 'direct';
  };
  /** Processes executing runs (docs/architecture.md, "Processes"). */
  workers: {
    /** At most this many runs of one user execute at once, across every worker (FORGELINK_RUNS_PER_USER). */
    runsPerUser: number;
    /** A worker without a heartbeat for this long is lost; its runs end `worker_lost` (FORGELINK_WORKER_LOST_AFTER). */
    lostAfterMs: number;
    /** After SIGTERM, how long running runs may still finish before they are stopped (FORGELINK_WORKER_DRAIN). */
    drainMs: number;
  };
  /** The connection health monitor (FORGELINK_MONITOR, FORGELINK_MONITOR_INTERVAL, FORGELINK_MONITOR_JITTER). */
  monitor: { enabled: boolean; intervalMs: number; jitterMs: number };
  /** Agent profiles: the built-in ones with FORGELINK_AGENTS's changes (config/agents.ts). */
  agents: AgentProfile[];
  /** Who may read GET /metrics (FORGELINK_METRICS_ACCESS): `admin` (an administrator's API key, the default) or `open`. */
  metricsAccess: 'admin' | 'open';
  /** The operator's notification hook (FORGELINK_NOTIFY_WEBHOOK, FORGELINK_NOTIFY_WEBHOOK_SECRET); null when unset. */
  notifyWebhook: { url: string; secret: string | null } | null;
  /** What the operator lets brokered runs do beyond their own branches (FORGELINK_POLICY); runs may only narrow it. */
  policy: OperatorPolicy;
};

/** `caPem` comes from the entry's optional `caFile`: the instance's private CA, for OAuth and its connections. */
export type GitLabOAuthApp = { baseUrl: string; clientId: string; clientSecret: string | null; caPem: string | null };

/** A variable that is set but wrong; the message names the variable. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function value(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const trimmed = raw.trim();
  return trimmed === '' ? undefined : trimmed;
}

export function readListen(env: Env): Config['listen'] {
  const raw = value(env, 'FORGELINK_LISTEN') ?? '127.0.0.1:8080';
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw);
  const port = Number(match?.[3]);
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new ConfigError('FORGELINK_LISTEN', `expected host:port (for example 127.0.0.1:8080), got "${raw}"`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

/** The master key variables, passed on as given; the vault's keyring loader validates them and names the variable. */
function readMasterKey(env: Env): Config['masterKey'] {
  return { masterKey: value(env, 'FORGELINK_MASTER_KEY'), masterKeyFile: value(env, 'FORGELINK_MASTER_KEY_FILE') };
}

const OAuthApps = z.array(
  z.object({
    baseUrl: z.string().min(1),
    clientId: z.string().min(1),
    clientSecret: z.string().min(1).nullable().optional(),
    caFile: z.string().min(1).optional(),
  }),
);

function readOAuthApps(env: Env, cwd: string): GitLabOAuthApp[] {
  const raw = value(env, 'FORGELINK_GITLAB_OAUTH_APPS');
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('FORGELINK_GITLAB_OAUTH_APPS', 'is not valid JSON');
  }
  const result = OAuthApps.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(
      'FORGELINK_GITLAB_OAUTH_APPS',
      `expected [{"baseUrl","clientId","clientSecret"?}]: ${issue?.path.join('.') || 'value'} ${issue?.message ?? ''}`.trim(),
    );
  }
  const apps: GitLabOAuthApp[] = [];
  for (const [index, app] of result.data.entries()) {
    let baseUrl: string;
    try {
      baseUrl = normaliseBaseUrl(app.baseUrl, { allowHttp: readBoolean(env, 'FORGELINK_ALLOW_HTTP', false) });
    } catch (error) {
      throw new ConfigError('FORGELINK_GITLAB_OAUTH_APPS', `${index}.baseUrl: ${error instanceof ForgelinkError ? error.message : String(error)}`);
    }
    if (apps.some((other) => other.baseUrl === baseUrl)) {
      throw new ConfigError('FORGELINK_GITLAB_OAUTH_APPS', `${index}.baseUrl: ${baseUrl} is listed twice; one application per instance`);
    }
    let caPem: string | null = null;
    if (app.caFile !== undefined) {
      try {
        caPem = readFileSync(path.resolve(cwd, app.caFile), 'utf8');
      } catch {
        throw new ConfigError('FORGELINK_GITLAB_OAUTH_APPS', `${index}.caFile: cannot read ${app.caFile}`);
      }
      if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
        throw new ConfigError('FORGELINK_GITLAB_OAUTH_APPS', `${index}.caFile: ${app.caFile} holds no PEM certificate`);
      }
    }
    apps.push({ baseUrl, clientId: app.clientId, clientSecret: app.clientSecret ?? null, caPem });
  }
  return apps;
}

/**
 * GitLab's scope names are lower-case words with underscores; the default asks for the API (clone, push, merge
 * requests, issues) and the account's identity (docs/gitlab.md, "Scopes and what they allow").
 */
function readOAuthScopes(env: Env): string[] {
  const raw = value(env, 'FORGELINK_GITLAB_OAUTH_SCOPES') ?? 'api read_user';
  const scopes = [...new Set(raw.split(/[\s,]+/).filter((scope) => scope !== ''))];
  for (const scope of scopes) {
    if (!/^[a-z][a-z0-9_:]*$/.test(scope)) throw new ConfigError('FORGELINK_GITLAB_OAUTH_SCOPES', `"${scope}" is not a GitLab scope name`);
  }
  if (scopes.length === 0) throw new ConfigError('FORGELINK_GITLAB_OAUTH_SCOPES', 'names no scope');
  return scopes;
}

/** Reads and validates the server's configuration. Throws ConfigError naming the first bad variable. */
/** The config file's keys and the variables they stand for (docs/contract.md, "Config file"). */
const CONFIG_FILE_KEYS = { agents: 'FORGELINK_AGENTS', gitlabOAuthApps: 'FORGELINK_GITLAB_OAUTH_APPS', policy: 'FORGELINK_POLICY' } as const;

const ConfigFile = z
  .object({
    agents: z.record(z.string(), z.unknown()).optional(),
    gitlabOAuthApps: z.array(z.unknown()).optional(),
    policy: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/**
 * FORGELINK_CONFIG_FILE: a JSON file holding what is long to write as an environment variable — agent profiles,
 * OAuth applications, the run policy. Each key is read exactly as its variable would be; setting both is refused.
 */
function withConfigFile(env: Env, cwd: string): Env {
  const file = value(env, 'FORGELINK_CONFIG_FILE');
  if (file === undefined) return env;
  const resolved = path.resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(resolved, 'utf8');
  } catch (error) {
    throw new ConfigError('FORGELINK_CONFIG_FILE', `cannot read ${resolved} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError('FORGELINK_CONFIG_FILE', `${resolved} is not valid JSON`);
  }
  const parsed = ConfigFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'the file';
    const unknown = issue?.code === 'unrecognized_keys' ? ` (keys it may hold: ${Object.keys(CONFIG_FILE_KEYS).join(', ')})` : '';
    throw new ConfigError('FORGELINK_CONFIG_FILE', `${resolved}: ${where}: ${issue?.message ?? 'invalid'}${unknown}`);
  }
  const merged: Record<string, string | undefined> = { ...env };
  for (const [key, variable] of Object.entries(CONFIG_FILE_KEYS)) {
    const entry = parsed.data[key as keyof typeof CONFIG_FILE_KEYS];
    if (entry === undefined) continue;
    if (value(env, variable) !== undefined) {
      throw new ConfigError('FORGELINK_CONFIG_FILE', `${resolved} sets "${key}" and ${variable} is set too; keep one of them`);
    }
    merged[variable] = JSON.stringify(entry);
  }
  return merged;
}

export function readConfig(givenEnv: Env = process.env, cwd: string = process.cwd()): Config {
  const env = withConfigFile(givenEnv, cwd);
  const dataDir = path.resolve(cwd, value(env, 'FORGELINK_DATA_DIR') ?? 'data');

  const databaseUrl = value(env, 'DATABASE_URL') ?? null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'expected a postgres:// or postgresql:// URL (unset it to use the embedded SQLite database)');
  }

  const outboundAllow = (value(env, 'FORGELINK_OUTBOUND_ALLOW') ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const entry of outboundAllow) {
    const problem = invalidAllowEntry(entry);
    if (problem) throw new ConfigError('FORGELINK_OUTBOUND_ALLOW', problem);
  }

  const rawProxy = value(env, 'FORGELINK_UPSTREAM_PROXY');
  const upstreamProxy = rawProxy === undefined ? null : parseUpstreamProxy(rawProxy);
  if (typeof upstreamProxy === 'string') throw new ConfigError('FORGELINK_UPSTREAM_PROXY', upstreamProxy);

  const listen = readListen(env);
  const publicUrl = readPublicUrl(env, listen);

  const logLevel = value(env, 'FORGELINK_LOG_LEVEL') ?? 'info';
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  if (!(levels as readonly string[]).includes(logLevel)) {
    throw new ConfigError('FORGELINK_LOG_LEVEL', `expected one of ${levels.join(', ')}, got "${logLevel}"`);
  }

  const logFormat = value(env, 'FORGELINK_LOG_FORMAT') ?? null;
  if (logFormat !== null && logFormat !== 'json' && logFormat !== 'pretty') {
    throw new ConfigError('FORGELINK_LOG_FORMAT', `expected json or pretty (or unset: pretty on a terminal, json otherwise), got "${logFormat}"`);
  }

  return {
    dataDir,
    imageDir: path.resolve(cwd, value(env, 'FORGELINK_IMAGE_DIR') ?? path.join(dataDir, 'images')),
    databaseUrl,
    masterKey: readMasterKey(env),
    outboundAllow,
    upstreamProxy,
    allowHttp: readBoolean(env, 'FORGELINK_ALLOW_HTTP', false),
    listen,
    publicUrl,
    logLevel: logLevel as Config['logLevel'],
    logFormat,
    gitlabOAuthApps: readOAuthApps(env, cwd),
    gitlabOAuthScopes: readOAuthScopes(env),
    runs: readRuns(env),
    workers: readWorkers(env),
    monitor: readMonitor(env),
    notifyWebhook: readNotifyWebhook(env),
    metricsAccess: readMetricsAccess(env),
    agents: readAgents(env),
    policy: readPolicy(env),
  };
}

function readPolicy(env: Env): OperatorPolicy {
  const policy = readOperatorPolicy(value(env, 'FORGELINK_POLICY'));
  if ('problem' in policy) throw new ConfigError('FORGELINK_POLICY', policy.problem);
  return policy;
}

function readMetricsAccess(env: Env): Config['metricsAccess'] {
  const raw = value(env, 'FORGELINK_METRICS_ACCESS') ?? 'admin';
  if (raw !== 'admin' && raw !== 'open') {
    throw new ConfigError('FORGELINK_METRICS_ACCESS', `expected admin (an administrator's API key) or open (anyone who reaches the listener), got "${raw}"`);
  }
  return raw;
}

function readAgents(env: Env): AgentProfile[] {
  const agents = readAgentProfiles(value(env, 'FORGELINK_AGENTS'));
  if (!Array.isArray(agents)) throw new ConfigError('FORGELINK_AGENTS', `${agents.path === '' ? '' : `${agents.path}: `}${agents.message}`);
  return agents;
}

const DEFAULT_MONITOR_INTERVAL_SECONDS = 6 * 3600;

function readMonitor(env: Env): Config['monitor'] {
  const intervalMs = readDuration(env, 'FORGELINK_MONITOR_INTERVAL', DEFAULT_MONITOR_INTERVAL_SECONDS);
  // The default spreads checks over a tenth of the interval; 0 checks every connection right on it.
  const rawJitter = value(env, 'FORGELINK_MONITOR_JITTER');
  let jitterMs: number;
  if (rawJitter === undefined) jitterMs = Math.round(intervalMs / 10);
  else if (/^0+\s*[smh]?$/i.test(rawJitter)) jitterMs = 0;
  else jitterMs = readDuration(env, 'FORGELINK_MONITOR_JITTER', 0);
  if (jitterMs > intervalMs) throw new ConfigError('FORGELINK_MONITOR_JITTER', 'is longer than FORGELINK_MONITOR_INTERVAL');
  return { enabled: readBoolean(env, 'FORGELINK_MONITOR', true), intervalMs, jitterMs };
}

/** https, or plain http to a loopback receiver (a local relay): the events name accounts and hosts. */
function readNotifyWebhook(env: Env): Config['notifyWebhook'] {
  const raw = value(env, 'FORGELINK_NOTIFY_WEBHOOK');
  const secret = value(env, 'FORGELINK_NOTIFY_WEBHOOK_SECRET') ?? null;
  if (raw === undefined) {
    if (secret !== null) throw new ConfigError('FORGELINK_NOTIFY_WEBHOOK_SECRET', 'is set but FORGELINK_NOTIFY_WEBHOOK is not');
    return null;
  }
  const url = readHttpsUrl('FORGELINK_NOTIFY_WEBHOOK', raw);
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError('FORGELINK_NOTIFY_WEBHOOK', 'must not carry a user name or password; sign the events with FORGELINK_NOTIFY_WEBHOOK_SECRET instead');
  }
  return { url: url.href, secret };
}

function readDuration(env: Env, name: string, fallbackSeconds: number): number {
  const raw = value(env, name);
  if (raw === undefined) return fallbackSeconds * 1000;
  const match = /^(\d+)\s*(s|m|h)?$/i.exec(raw);
  const seconds = match ? Number(match[1]) * ({ s: 1, m: 60, h: 3600 }[(match[2] ?? 's').toLowerCase() as 's' | 'm' | 'h']) : 0;
  if (seconds <= 0) throw new ConfigError(name, `expected a duration like 90s, 30m or 2h, got "${raw}"`);
  return seconds * 1000;
}

function readOrigins(env: Env, name: string, allowStar: boolean): string[] {
  const entries = (value(env, name) ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  return entries.map((entry) => {
    if (allowStar && entry === '*') return '*';
    const origin = normaliseOrigin(entry);
    if (origin === null) throw new ConfigError(name, `"${entry}" is not a host, host:port or *.suffix:port`);
    return origin;
  });
}

/** A size in bytes (`1073741824`, `512MB`, `2GB`; 1024-based) of at least `minimum`. */
function readByteSize(env: Env, name: string, fallback: string, minimum: number): number {
  const raw = value(env, name) ?? fallback;
  const bytes = parseByteSize(raw);
  if (bytes === null) throw new ConfigError(name, `expected a size in bytes or with a unit, like 4GB or 512MB, got "${raw}"`);
  if (bytes < minimum) throw new ConfigError(name, `must be at least ${minimum / 1024 ** 2}MB, got "${raw}"`);
  return bytes;
}

/** Runs at once on this machine when not configured: one per core, and no more than one per 2 GiB of memory. */
export function defaultWorkerConcurrency(): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(totalmem() / 2 ** 31)));
}

function readWholeNumber(env: Env, name: string, fallback: number, max: number): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const number = Number(raw);
  if (!Number.isInteger(number) || number < 1 || number > max) throw new ConfigError(name, `expected a whole number from 1 to ${max}, got "${raw}"`);
  return number;
}

function readWorkers(env: Env): Config['workers'] {
  return {
    runsPerUser: readWholeNumber(env, 'FORGELINK_RUNS_PER_USER', 4, 10_000),
    lostAfterMs: readDuration(env, 'FORGELINK_WORKER_LOST_AFTER', 60),
    drainMs: readDuration(env, 'FORGELINK_WORKER_DRAIN', 30),
  };
}

function readRuns(env: Env): Config['runs'] {
  // FORGELINK_RUN_CONCURRENCY is the older name, still read.
  const name = value(env, 'FORGELINK_WORKER_CONCURRENCY') === undefined && value(env, 'FORGELINK_RUN_CONCURRENCY') !== undefined ? 'FORGELINK_RUN_CONCURRENCY' : 'FORGELINK_WORKER_CONCURRENCY';
  const concurrency = readWholeNumber(env, name, defaultWorkerConcurrency(), 256);
  const defaultTimeoutMs = readDuration(env, 'FORGELINK_RUN_TIMEOUT', 30 * 60);
  const maxTimeoutMs = readDuration(env, 'FORGELINK_RUN_MAX_TIMEOUT', 4 * 3600);
  if (defaultTimeoutMs > maxTimeoutMs) {
    throw new ConfigError('FORGELINK_RUN_TIMEOUT', 'is longer than FORGELINK_RUN_MAX_TIMEOUT');
  }
  const sandboxMounts = (value(env, 'FORGELINK_SANDBOX_MOUNTS') ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  for (const mount of sandboxMounts) {
    if (!path.isAbsolute(mount)) throw new ConfigError('FORGELINK_SANDBOX_MOUNTS', `"${mount}" is not an absolute path`);
  }
  return {
    concurrency,
    defaultTimeoutMs,
    maxTimeoutMs,
    extraHosts: readOrigins(env, 'FORGELINK_RUN_EXTRA_HOSTS', false),
    userHostPatterns: readOrigins(env, 'FORGELINK_RUN_USER_HOSTS', true),
    sandboxMounts: sandboxMounts.map((mount) => path.resolve(mount)),
    // Below a few MiB neither git nor a shell gets going: such a cap is a typo.
    memoryMaxBytes: readByteSize(env, 'FORGELINK_RUN_MEMORY_MAX', '4GB', 16 * 1024 ** 2),
    diskMaxBytes: readByteSize(env, 'FORGELINK_RUN_DISK_MAX', '10GB', 1024 ** 2),
    repoCache: { enabled: readBoolean(env, 'FORGELINK_REPO_CACHE', true), maxBytes: readByteSize(env, 'FORGELINK_REPO_CACHE_MAX', '10GB', 0) },
    cpuMillicores: readCpuMax(env),
    cpuWeight: readCpuWeight(env),
    nice: readNice(env),
    credentials: readCredentials(env),
  };
}

/** CPUs a run may use at most: `1`, `0.5`, `2.25` (at least 0.01); unset for no cap. */
function readCpuMax(env: Env): number | null {
  const raw = value(env, 'FORGELINK_RUN_CPU_MAX');
  if (raw === undefined) return null;
  const cpus = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!(cpus >= 0.01 && cpus <= 1024)) throw new ConfigError('FORGELINK_RUN_CPU_MAX', `expected a number of CPUs from 0.01 to 1024, like 1 or 1.5, got "${raw}"`);
  return Math.round(cpus * 1000);
}

function readCpuWeight(env: Env): number | null {
  const raw = value(env, 'FORGELINK_RUN_CPU_WEIGHT') ?? '20';
  if (raw === 'off') return null;
  const weight = Number(raw);
  if (!/^\d+$/.test(raw) || weight < 1 || weight > 10000) {
    throw new ConfigError('FORGELINK_RUN_CPU_WEIGHT', `expected a whole number from 1 to 10000 (forgelink's own processes have 100), or off, got "${raw}"`);
  }
  return weight;
}

function readNice(env: Env): number {
  const raw = value(env, 'FORGELINK_RUN_NICE') ?? '10';
  const nice = Number(raw);
  if (!/^\d+$/.test(raw) || nice > 19) throw new ConfigError('FORGELINK_RUN_NICE', `expected a whole number from 0 (none) to 19, got "${raw}"`);
  return nice;
}

function readCredentials(env: Env): 'brokered' | 'direct' {
  const raw = value(env, 'FORGELINK_CREDENTIALS');
  if (raw === undefined) return 'brokered';
  if (raw === 'brokered' || raw === 'direct') return raw;
  throw new ConfigError('FORGELINK_CREDENTIALS', `expected brokered or direct, got "${raw}"`);
}

function readPublicUrl(env: Env, listen: Config['listen']): string {
  const raw = value(env, 'FORGELINK_PUBLIC_URL');
  if (raw === undefined) {
    const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host;
    return `http://${host}:${listen.port}`;
  }
  readHttpsUrl('FORGELINK_PUBLIC_URL', raw);
  return raw.replace(/\/+$/, '');
}

/** A URL that must be https, or plain http to a loopback address only (nothing else is private on the way). */
function readHttpsUrl(name: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `"${raw}" is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHostname(url.hostname))) {
    throw new ConfigError(name, 'must use https:// (plain http only for loopback addresses)');
  }
  return url;
}
