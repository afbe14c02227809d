import type { Hono } from 'hono';
import { authenticate } from '../auth.ts';
import type { AppEnv, Deps } from '../context.ts';
import { tokenEntity } from '../entities.ts';

/**
 * doc/api/personal_access_tokens.md: `self` answers with any scope, but still 401s expired or revoked tokens.
 * Any other kind of token (OAuth) gets a 400 after authentication (lib/api/personal_access_tokens/self_information.rb).
 */
export function registerTokenRoutes(api: Hono<AppEnv>, deps: Deps): void {
  api.get('/personal_access_tokens/self', (c) => {
    const auth = authenticate(c, c.get('credential'), []);
    if (auth instanceof Response) return auth;
    if (auth.token.type !== 'personal') {
      return c.json({ message: '400 Bad request - This endpoint requires token type to be a personal access token' }, 400);
    }
    return c.json(tokenEntity(deps.state, auth.token.record));
  });
}
