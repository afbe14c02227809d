/** Interfaces the outer parts implement. Only `main.ts` names the concrete implementations. */
import type { Account, Connection, InstanceInfo, Project, TokenInfo, User } from './types.ts';

export interface Clock {
  now(): Date;
}

/** Where a GitLab instance is and how to trust it. */
export type GitLabTarget = { baseUrl: string; caPem?: string | null };
export type GitLabCredentials = { token: string; kind: 'pat' | 'oauth' };

/** A GitLab REST client bound to one instance and one token. Errors are `UpstreamError`s. */
export interface GitLabClient {
  /** `GET /personal_access_tokens/self`; null when the token is not a personal access token (GitLab answers 400). */
  inspectToken(): Promise<TokenInfo | null>;
  /** `GET /user` (needs read_user, read_api or api). */
  currentUser(): Promise<Account>;
  /** `GET /metadata` (needs read_user or api). */
  metadata(): Promise<InstanceInfo>;
  /** Every project the account has Developer access or more to, across all pages. */
  projects(options?: { search?: string }): AsyncIterable<Project>;
  /** Releases the client's connections; call when done with it. */
  close(): Promise<void>;
}

export type GitLabClientFactory = (target: GitLabTarget, credentials: GitLabCredentials) => GitLabClient;

/** Anonymous probe of an instance, used before a token is involved. */
export interface GitLabProbe {
  /** Resolves when `baseUrl` answers like GitLab; otherwise throws an UpstreamError (not_gitlab, unreachable, certificate, blocked_address). */
  assertGitLab(target: GitLabTarget): Promise<void>;
}

/** A secret sealed for one owner and one record. */
export type SecretBinding = { ownerId: string; recordId: string; purpose: string };

/** AES-256-GCM sealing; `open` throws VaultError on tamper, wrong binding or unknown key. */
export interface Vault {
  seal(plaintext: string, binding: SecretBinding): string;
  open(sealed: string, binding: SecretBinding): string;
  /** The key id a sealed value was sealed with. */
  keyIdOf(sealed: string): string;
  /** The key id new seals use. */
  currentKeyId(): string;
}

export type NewUser = { id: string; name: string; isAdmin: boolean; apiKeyHash: string; createdAt: string };

export interface UserStore {
  createUser(user: NewUser): Promise<User>;
  findUserByName(name: string): Promise<User | null>;
  findUserByApiKeyHash(hash: string): Promise<User | null>;
  listUsers(): Promise<User[]>;
}

export type StoredSecret = {
  id: string;
  ownerId: string;
  connectionId: string;
  purpose: string;
  sealed: string;
};

export interface ConnectionStore {
  /** Inserts the connection and its sealed secrets in one transaction. */
  createConnection(connection: Connection, secrets: StoredSecret[]): Promise<void>;
  /** The user's connection, or null when it does not exist or belongs to someone else. */
  getConnection(userId: string, id: string): Promise<Connection | null>;
  listConnections(userId: string): Promise<Connection[]>;
  updateConnection(
    userId: string,
    id: string,
    patch: Partial<Omit<Connection, 'id' | 'userId' | 'provider' | 'createdAt'>>,
  ): Promise<Connection | null>;
  /** Deletes the connection and every secret of it; false when there was none for this user. */
  deleteConnection(userId: string, id: string): Promise<boolean>;
  getSecret(userId: string, connectionId: string, purpose: string): Promise<StoredSecret | null>;
  /** Every secret, in batches; used by key rotation. */
  allSecrets(): AsyncIterable<StoredSecret>;
  /**
   * Replaces sealed values in one transaction (key rotation, token refresh). With `expected`, a row is
   * replaced only while its sealed value is still that one, so a rotation never overwrites a concurrent refresh.
   */
  replaceSecrets(updates: { id: string; sealed: string; expected?: string }[]): Promise<void>;
}
