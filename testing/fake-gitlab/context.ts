import type { ChildProcess } from 'node:child_process';
import type { Credential } from './auth.ts';
import type { Site } from './entities.ts';
import type { Repositories } from './repos.ts';
import type { FakeState, RecordedRequest } from './state.ts';

/** What the fake reports about itself (GET /metadata). */
export interface InstanceInfo {
  version: string;
  revision: string;
  enterprise: boolean;
}

/** How git processes reach the fake's hook endpoints, and which ones are running. */
export interface GitRuntime {
  /** Unix socket of the internal API the pre- and post-receive hooks call. */
  hookSocket: string;
  /** Shared secret the hooks present (GitLab's Gitlab-Shell-Api-Request plays this part). */
  hookSecret: string;
  /** git http-backend processes still running; stopped on close. */
  children: Set<ChildProcess>;
}

/** Everything a route needs; one per fake, passed down instead of kept in modules. */
export interface Deps {
  state: FakeState;
  site: Site;
  instance: InstanceInfo;
  repos: Repositories;
  git: GitRuntime;
}

export type AppEnv = { Variables: { credential: Credential; record: RecordedRequest } };
