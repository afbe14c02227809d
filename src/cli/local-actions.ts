import type { IssuedApiKey } from './keys-commands.ts';

/** What only the local process can do: serve, and admin commands on the data dir. Wired by main.ts. */
export type LocalActions = {
  /** `newMasterKey`: start even when the master key cannot open the secrets the database holds. */
  serve(options: { newMasterKey: boolean }): Promise<void>;
  addUser(name: string, isAdmin: boolean, password?: string): Promise<{ id: string; name: string; isAdmin: boolean; apiKey: string }>;
  /** Sets a user's dashboard password and ends their sessions. */
  setPassword(name: string, password: string): Promise<{ name: string; sessionsEnded: number }>;
  listUsers(): Promise<{ id: string; name: string; isAdmin: boolean; createdAt: string }[]>;
  rotateKey(options: { resealOnly: boolean }): Promise<{ keyId: string; resealed: number; total: number; failed: string[]; remaining: number }>;
  /** A new API key for the named user (`name`: the key's; a dated default when absent). */
  issueKey(user: string, name: string | undefined): Promise<IssuedApiKey>;
  /** The repository cache's mirrors on this machine, least recently used first. */
  listCache(): Promise<CacheListing>;
  /** Removes idle mirrors, least recently used first, until the cache is under its limit (all of them with `all`). */
  pruneCache(options: { all: boolean }): Promise<CachePruned>;
};

export type CacheMirror = {
  key: string;
  baseUrl: string | null;
  projectId: number | null;
  projectPath: string | null;
  sizeBytes: number;
  createdAt: string | null;
  lastUsedAt: string | null;
  lastFetchAt: string | null;
  inUse: boolean;
  path: string;
};
export type CacheListing = { enabled: boolean; dir: string; maxBytes: number; totalBytes: number; mirrors: CacheMirror[] };
export type CachePruned = { dir: string; maxBytes: number; totalBytes: number; removed: CacheMirror[] };
