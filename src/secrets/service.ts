import {
  auditEntry,
  ForgelinkError,
  InputError,
  MAX_SECRET_HOSTS,
  NotFoundError,
  normaliseOrigin,
  secretNameProblem,
  secretValueProblem,
  type AuditStore,
  type Clock,
  type UserSecret,
  type UserSecretStore,
  type Vault,
} from '../core/index.ts';
import { bindingForUserSecret } from '../vault/index.ts';

/** A secret as the API, the CLI and the dashboard show it (docs/contract.md, "Secrets"): never its value. */
export type SecretView = { name: string; hosts: string[]; createdAt: string; updatedAt: string; lastUsedAt: string | null };

export function secretView(secret: UserSecret): SecretView {
  return { name: secret.name, hosts: secret.hosts, createdAt: secret.createdAt, updatedAt: secret.updatedAt, lastUsedAt: secret.lastUsedAt };
}

/** A secret's name as given, checked; throws InputError naming `field`. */
export function checkSecretName(name: string, field = 'name'): string {
  const problem = secretNameProblem(name);
  if (problem !== null) throw new InputError('invalid_secret_name', `The secret name "${name}" ${problem}.`, { field });
  return name;
}

/** Origins a secret is bound to, normalised; throws InputError naming `hosts`. */
export function checkSecretHosts(hosts: readonly string[]): string[] {
  if (hosts.length > MAX_SECRET_HOSTS) {
    throw new InputError('invalid_secret_hosts', `A secret may name at most ${MAX_SECRET_HOSTS} hosts.`, { field: 'hosts' });
  }
  const origins: string[] = [];
  for (const entry of hosts) {
    const origin = normaliseOrigin(entry);
    if (origin === null || origin.startsWith('*.')) {
      throw new InputError('invalid_secret_hosts', `"${entry}" is not a host or host:port (e.g. api.anthropic.com:443).`, { field: 'hosts' });
    }
    if (!origins.includes(origin)) origins.push(origin);
  }
  return origins;
}

/** The hint every "no such secret" error carries. */
export function setSecretHint(name: string): string {
  return `set it with \`forgelink secrets set ${name}\` (the value is read from stdin) or on the dashboard's Secrets page`;
}

export type SecretServiceDeps = {
  store: UserSecretStore;
  vault: Vault;
  clock: Clock;
  audit?: AuditStore;
  newId: () => string;
};

/** A user's named secrets: set, list, delete, and decrypting them for a run as it starts. */
export function createSecretService(deps: SecretServiceDeps) {
  const { store, vault, clock } = deps;

  async function record(userId: string, action: 'secret.set' | 'secret.deleted' | 'secret.decrypted', fields: { runId?: string; details: Record<string, unknown> }) {
    await deps.audit?.record(
      auditEntry(clock.now(), {
        ownerId: userId,
        actor: userId,
        action,
        runId: fields.runId ?? null,
        reason: action === 'secret.decrypted' ? 'run' : null,
        details: fields.details,
      }),
    );
  }

  return {
    async list(userId: string): Promise<SecretView[]> {
      return (await store.listSecrets(userId)).map(secretView);
    },

    /** Creates or replaces; `hosts` absent keeps a replaced secret's hosts. The value is sealed at once. */
    async set(userId: string, name: string, input: { value: string; hosts?: readonly string[] | undefined }): Promise<{ secret: SecretView; created: boolean }> {
      checkSecretName(name);
      const problem = secretValueProblem(input.value);
      // The message never repeats the value.
      if (problem !== null) throw new InputError('invalid_secret_value', `The secret's value ${problem}.`, { field: 'value' });
      const hosts = input.hosts === undefined ? null : checkSecretHosts(input.hosts);
      const { secret, created } = await store.putSecret({
        userId,
        name,
        hosts,
        seal: (id) => vault.seal(input.value, bindingForUserSecret({ userId, id, name })),
        newId: deps.newId,
        now: clock.now().toISOString(),
      });
      await record(userId, 'secret.set', { details: { name, secretId: secret.id, created, hosts: secret.hosts } });
      return { secret: secretView(secret), created };
    },

    async delete(userId: string, name: string): Promise<void> {
      checkSecretName(name);
      if (!(await store.deleteSecret(userId, name))) throw new NotFoundError('secret_not_found', `You have no secret named ${name}.`, { field: 'name' });
      await record(userId, 'secret.deleted', { details: { name } });
    },

    /** Refuses (before a run is queued) names the user has no secret of, saying how to set them. */
    async assertExist(userId: string, names: readonly string[], field = 'secrets'): Promise<void> {
      if (names.length === 0) return;
      const found = new Set((await store.getSecrets(userId, names)).map((secret) => secret.name));
      const missing = names.filter((name) => !found.has(name));
      const first = missing[0];
      if (first === undefined) return;
      throw new InputError(
        'secret_not_found',
        `You have no secret named ${missing.join(', ')}: ${setSecretHint(first)}.`,
        { field },
      );
    },

    /**
     * Decrypts the run's secrets as it starts: each decryption is audited (who, which secret, which run; never the
     * value) and the secrets' last use is updated. A secret deleted since the run was queued fails the run.
     */
    async openForRun(run: { id: string; userId: string; secrets: readonly string[] }): Promise<{ name: string; value: string; hosts: string[] }[]> {
      if (run.secrets.length === 0) return [];
      const stored = await store.getSecrets(run.userId, run.secrets);
      const byName = new Map(stored.map((secret) => [secret.name, secret]));
      const opened: { name: string; value: string; hosts: string[] }[] = [];
      for (const name of run.secrets) {
        const secret = byName.get(name);
        if (secret === undefined) {
          throw new ForgelinkError('secret_not_found', `The secret ${name} no longer exists (deleted after the run was queued): ${setSecretHint(name)}, then start the run again.`);
        }
        const value = vault.open(secret.sealed, bindingForUserSecret(secret));
        await record(run.userId, 'secret.decrypted', { runId: run.id, details: { name, secretId: secret.id } });
        opened.push({ name, value, hosts: [...secret.hosts] });
      }
      await store.markUsed(run.userId, stored.map((secret) => secret.id), clock.now().toISOString());
      return opened;
    },
  };
}

export type SecretService = ReturnType<typeof createSecretService>;
