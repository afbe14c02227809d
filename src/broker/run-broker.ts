import { createRunCa } from './ca.ts';
import { createBroker, type Broker, type BrokeredCredential, type BrokerRecord, type GuardDecision, type GuardRequest } from './proxy.ts';
import { gitLabSurrogate, secretSurrogate } from './surrogates.ts';

export type RunBrokerInput = {
  runId: string;
  /** The run's time limit: the CA is valid that long and an hour more. */
  timeoutMs: number;
  gitlab: {
    /** The connection's origin, `host:port`. */
    origin: string;
    caPem: string | null;
    oauth: boolean;
    /** The connection's current token (refreshed when due), asked for each request. */
    token: () => Promise<string>;
  };
  /** The run's secrets bound to origins (those without hosts are not brokered). */
  secrets: readonly { name: string; value: string; hosts: readonly string[] }[];
  guard?: (request: GuardRequest) => GuardDecision | Promise<GuardDecision>;
  onRecord?: (record: BrokerRecord) => void;
};

export type RunBroker = {
  broker: Broker;
  /** The run CA's certificate (PEM) for the sandbox's CA bundle. */
  caPem: string;
  /** What the sandbox gets instead of each credential: `GITLAB_TOKEN` and each brokered secret's name → its surrogate. */
  surrogates: Record<string, string>;
  /** The origins requests are brokered at. */
  origins: string[];
};

/** A run's broker: its CA, a surrogate per credential, and the proxy hook that swaps them (docs/security.md, "Credential broker"). */
export async function startRunBroker(input: RunBrokerInput): Promise<RunBroker> {
  const ca = await createRunCa({ runId: input.runId, validForMs: input.timeoutMs });
  const surrogate = gitLabSurrogate();
  const credentials: BrokeredCredential[] = [
    { name: 'GITLAB_TOKEN', surrogate, origins: [input.gitlab.origin], real: input.gitlab.token, oauth: input.gitlab.oauth },
  ];
  const origins = new Map<string, { caPem: string | null; policy: boolean }>([[input.gitlab.origin, { caPem: input.gitlab.caPem, policy: true }]]);
  const surrogates: Record<string, string> = { GITLAB_TOKEN: surrogate };
  for (const secret of input.secrets) {
    if (secret.hosts.length === 0) continue;
    const value = secret.value;
    const stand = secretSurrogate(value);
    surrogates[secret.name] = stand;
    credentials.push({ name: secret.name, surrogate: stand, origins: [...secret.hosts], real: async () => value });
    for (const host of secret.hosts) if (!origins.has(host)) origins.set(host, { caPem: null, policy: false });
  }
  const broker = createBroker({
    ca,
    credentials,
    origins,
    ...(input.guard ? { guard: input.guard } : {}),
    ...(input.onRecord ? { onRecord: input.onRecord } : {}),
  });
  return { broker, caPem: ca.certPem, surrogates, origins: [...origins.keys()] };
}
