import type { Hono } from 'hono';
import { authenticate } from '../auth.ts';
import type { AppEnv, Deps } from '../context.ts';
import { tokenEntity } from '../entities.ts';

/** doc/api/personal_access_tokens.md: `self` answers with any scope, but still 401s expired or revoked tokens. */
export function registerTokenRoutes(api: Hono<AppEnv>, deps: Deps): void {
  api.get('/personal_access_tokens/self', (c) => {
    const auth = authenticate(c, c.get('credential'), []);
    if (auth instanceof Response) return auth;
    return c.json(tokenEntity(deps.state, auth.token));
  });
}
