import type { Hono } from 'hono';
import { authenticate, readScopes } from '../auth.ts';
import type { AppEnv, Deps } from '../context.ts';
import { currentUserEntity } from '../entities.ts';

/** GET /user: lib/api/users.rb registers `read_user` for GET next to API::API's `api`/`read_api`. */
export function registerUserRoutes(api: Hono<AppEnv>, deps: Deps): void {
  api.get('/user', (c) => {
    const auth = authenticate(c, c.get('credential'), readScopes('read_user'));
    if (auth instanceof Response) return auth;
    return c.json(currentUserEntity(deps.site, auth.user));
  });
}
