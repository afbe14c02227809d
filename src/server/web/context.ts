import type { Logger } from 'pino';
import type { Clock, GitLabOAuthFlow, Session, SessionStore, User, UserStore } from '../../core/index.ts';
import type { ApiKeyService } from '../../api-keys/index.ts';
import type { ConnectionService } from '../../connections/index.ts';
import type { DoctorService } from '../../doctor/index.ts';
import type { RunService } from '../../runs/index.ts';
import type { SecretService } from '../../secrets/index.ts';
import type { AttemptLimiter } from './rate-limit.ts';
import type { SetupLinks } from './setup-link.ts';

/** The signed-in user of a dashboard request. */
export type Auth = { user: User; session: Session };

export type WebVariables = {
  /** Null when the request carries no valid session. */
  auth: Auth | null;
  /** The request carried a session cookie that no longer works (expired, signed out elsewhere). */
  sessionEnded: boolean;
};

export type WebEnv = { Variables: WebVariables };

export type WebDeps = {
  users: UserStore;
  /** Signing in with an API key, and the API keys page. */
  apiKeys: ApiKeyService;
  sessions: SessionStore;
  connections: ConnectionService;
  runs: RunService;
  /** Settings → Secrets. */
  secrets: SecretService;
  /** Null until an operator configures an OAuth application (FORGELINK_GITLAB_OAUTH_APPS). */
  oauthFlow: GitLabOAuthFlow | null;
  logger: Logger;
  clock: Clock;
  /** Where users reach forgelink; https here makes cookies Secure and `__Host-` prefixed. */
  publicUrl: string;
  signInLimiter: AttemptLimiter;
  /** `connections doctor` behind the card's Doctor button; absent when the server has none. */
  doctor?: DoctorService;
  /** The first start's one-time setup link (`/setup`); absent: no link was issued, every token is refused. */
  setupLinks?: SetupLinks;
};
