import type { IssuedApiKey } from './keys-commands.ts';

/** What only the local process can do: serve, and admin commands on the data dir. Wired by main.ts. */
export type LocalActions = {
  /**
   * `newMasterKey`: start even when the master key cannot open the secrets the database holds. `runs: false`
   * (`serve --no-runs`): serve the API only, leaving runs to `forgelink worker` processes.
   */
  serve(options: { newMasterKey: boolean; runs: boolean }): Promise<void>;
  /** `forgelink worker`: execute runs from the shared queue; serve only /healthz. */
  worker(): Promise<void>;
  addUser(name: string, isAdmin: boolean, password?: string): Promise<{ id: string; name: string; isAdmin: boolean; apiKey: string }>;
  /** Sets a user's dashboard password and ends their sessions. */
  setPassword(name: string, password: string): Promise<{ name: string; sessionsEnded: number }>;
  listUsers(): Promise<{ id: string; name: string; isAdmin: boolean; createdAt: string }[]>;
  rotateKey(options: { resealOnly: boolean }): Promise<{ keyId: string; resealed: number; total: number; failed: string[]; remaining: number }>;
  /** A new API key for the named user (`name`: the key's; a dated default when absent). */
  issueKey(user: string, name: string | undefined): Promise<IssuedApiKey>;
};
