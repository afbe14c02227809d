import type { IssuedApiKey } from './keys-commands.ts';
import type { MirrorListing } from '../runs/index.ts';

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
  /** The repository cache's mirrors on this machine, least recently used first. */
  listCache(): Promise<CacheListing>;
  /** Removes idle mirrors, least recently used first, until the cache is under its limit (all of them with `all`). */
  pruneCache(options: { all: boolean }): Promise<CachePruned>;
  /** The run image store (FORGELINK_IMAGE_DIR); `progress` gets skopeo's, umoci's and the recipe's lines. */
  pullImage(ref: string, progress: (line: string) => void): Promise<ImageView>;
  listImages(): Promise<ImageView[]>;
  removeImage(ref: string): Promise<ImageView>;
  buildAgentImage(recipe: string, options: BuildAgentOptions, progress: (line: string) => void): Promise<AgentImageBuild>;
};

/** A mirror of the repository cache, as `cache list --json` shows it. */
export type CacheMirror = MirrorListing;
export type CacheListing = { enabled: boolean; dir: string; maxBytes: number; totalBytes: number; mirrors: CacheMirror[] };
export type CachePruned = { dir: string; maxBytes: number; totalBytes: number; removed: CacheMirror[] };

/** An image in this machine's store, as `images list --json` shows it. */
export type ImageView = { ref: string; digest: string; sizeBytes: number; pulledAt: string; unpacked: boolean };

/** `images build agent`'s outcome: the layout it wrote and the image as pulled into the store. */
export type AgentImageBuild = { ref: string; recipeHash: string; cached: boolean; seconds: number; image: ImageView };

export type BuildAgentOptions = { output?: string; package: string[]; npm: string[]; suite?: string; mirror?: string; force?: boolean };
