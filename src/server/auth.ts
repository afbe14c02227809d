import type { MiddlewareHandler } from 'hono';
import { AuthenticationError, hashApiKey, type User, type UserStore } from '../core/index.ts';

export type AuthVariables = { user: User };

/** Requires `Authorization: Bearer <api key>` on every route it guards; sets `c.var.user`. */
export function requireApiKey(users: UserStore): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new AuthenticationError(
        'unauthenticated',
        'This API needs an API key: Authorization: Bearer flk_… (an administrator creates one with "forgelink admin user add <name>").',
      );
    }
    const user = await users.findUserByApiKeyHash(hashApiKey(match[1] as string));
    if (user === null) throw new AuthenticationError('unauthenticated', 'The API key is not valid.');
    c.set('user', user);
    await next();
  };
}
