import type { Logger } from 'pino';
import {
  API_KEY_USE_PRECISION_MS,
  apiKeyName,
  apiKeyPrefix,
  auditEntry,
  ConflictError,
  generateApiKey,
  hashApiKey,
  newId,
  NotFoundError,
  shouldRecordKeyUse,
  type ApiKeyStore,
  type ApiKeyView,
  type AuditStore,
  type Clock,
  type CreatedApiKey,
  type User,
} from '../core/index.ts';

/** How many working keys one user may hold; enough for every machine and script, and a bound on a runaway loop. */
export const MAX_ACTIVE_KEYS = 100;

/**
 * Who asks for a change, for the audit log: the user (or `admin` for the local admin command), through which door,
 * and with which key when it came over the API.
 */
export type KeyActor = { actor: string; via: 'api' | 'dashboard' | 'admin'; keyId?: string };

export type ApiKeyService = {
  /** Makes a key for `userId`; the answer holds the key, which is never available again. */
  create(userId: string, name: string, by: KeyActor): Promise<CreatedApiKey>;
  /** The user's working keys, oldest first. */
  list(userId: string): Promise<ApiKeyView[]>;
  /** Revokes one of the user's keys; it stops working on the next request. NotFoundError for anyone else's key. */
  revoke(userId: string, id: string, by: KeyActor): Promise<void>;
  /** The user a presented key belongs to, or null; records the key's use (at most once a minute). */
  authenticate(key: string): Promise<{ user: User; keyId: string } | null>;
};

export type ApiKeyServiceDeps = {
  store: ApiKeyStore;
  audit: AuditStore;
  clock: Clock;
  /** Where a failure to record a key's use is reported (the request goes on); the local admin commands have none. */
  logger?: Logger;
};

function view(key: ApiKeyView): ApiKeyView {
  return { id: key.id, name: key.name, prefix: key.prefix, createdAt: key.createdAt, lastUsedAt: key.lastUsedAt };
}

function details(by: KeyActor, key: { id: string; name: string; prefix: string }): Record<string, unknown> {
  return { keyId: key.id, name: key.name, prefix: key.prefix, via: by.via, ...(by.keyId === undefined ? {} : { usingKeyId: by.keyId }) };
}

/** Creating, listing, revoking and checking API keys; every change is audited, never with the key in it. */
export function createApiKeyService({ store, audit, clock, logger }: ApiKeyServiceDeps): ApiKeyService {
  return {
    async create(userId, rawName, by) {
      const name = apiKeyName(rawName);
      if ((await store.listKeys(userId)).length >= MAX_ACTIVE_KEYS) {
        throw new ConflictError('too_many_keys', `You have ${MAX_ACTIVE_KEYS} keys already: revoke one you no longer use first.`);
      }
      const key = generateApiKey();
      const now = clock.now();
      const created = { id: newId('key'), userId, name, prefix: apiKeyPrefix(key), createdAt: now.toISOString() };
      await store.createKey({ ...created, keyHash: hashApiKey(key) });
      await audit.record(auditEntry(now, { ownerId: userId, actor: by.actor, action: 'api_key.created', details: details(by, created) }));
      return { id: created.id, name, key, createdAt: created.createdAt };
    },

    async list(userId) {
      return (await store.listKeys(userId)).map(view);
    },

    async revoke(userId, id, by) {
      const key = (await store.listKeys(userId)).find((candidate) => candidate.id === id);
      const now = clock.now();
      if (key === undefined || !(await store.revokeKey(userId, id, now.toISOString()))) {
        throw new NotFoundError('key_not_found', `None of your keys has the id ${id}.`);
      }
      await audit.record(auditEntry(now, { ownerId: userId, actor: by.actor, action: 'api_key.revoked', details: details(by, key) }));
    },

    async authenticate(presented) {
      const found = await store.findActiveKey(hashApiKey(presented));
      if (found === null) return null;
      const now = clock.now();
      if (shouldRecordKeyUse(found.key.lastUsedAt, now)) {
        const staleAt = new Date(now.getTime() - API_KEY_USE_PRECISION_MS).toISOString();
        // Bookkeeping: a failed write must not turn away a request with a good key.
        await store.recordUse(found.key.id, now.toISOString(), staleAt).catch((error: unknown) => {
          logger?.warn({ err: error, keyId: found.key.id }, 'recording an API key use failed');
        });
      }
      return { user: found.user, keyId: found.key.id };
    },
  };
}
