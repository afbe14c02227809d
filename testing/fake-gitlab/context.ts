import type { Credential } from './auth.ts';
import type { Site } from './entities.ts';
import type { FakeState } from './state.ts';

/** What the fake reports about itself (GET /metadata). */
export interface InstanceInfo {
  version: string;
  revision: string;
  enterprise: boolean;
}

/** Everything a route needs; one per fake, passed down instead of kept in modules. */
export interface Deps {
  state: FakeState;
  site: Site;
  instance: InstanceInfo;
}

export type AppEnv = { Variables: { credential: Credential } };
