import type { MiddlewareHandler } from 'hono';
import type { ApiKeyService } from '../api-keys/index.ts';
import { AuthenticationError, type User } from '../core/index.ts';

/** The caller, and the key they authenticated with (a user may revoke that very key). */
export type AuthVariables = { user: User; apiKeyId: string };

/** Requires `Authorization: Bearer <api key>` on every route it guards; sets `c.var.user` and `c.var.apiKeyId`. */
export function requireApiKey(keys: ApiKeyService): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new AuthenticationError(
        'unauthenticated',
        'This API needs an API key: Authorization: Bearer flk_… (an administrator creates one with "forgelink admin user add <name>").',
      );
    }
    // Looked up on every request, so a revoked key is refused from the next request on.
    const found = await keys.authenticate(match[1] as string);
    if (found === null) throw new AuthenticationError('unauthenticated', 'The API key is not valid.');
    c.set('user', found.user);
    c.set('apiKeyId', found.keyId);
    await next();
  };
}
