import type { Hono } from 'hono';
import { authenticate, readScopes } from '../auth.ts';
import type { AppEnv, Deps } from '../context.ts';

/** doc/api/metadata.md and doc/api/version.md; both accept `read_user` (lib/api/metadata.rb, version.rb). */
export function registerMetadataRoutes(api: Hono<AppEnv>, deps: Deps): void {
  const { version, revision, enterprise } = deps.instance;
  api.get('/metadata', (c) => {
    const auth = authenticate(c, c.get('credential'), readScopes('read_user'));
    if (auth instanceof Response) return auth;
    return c.json({
      version,
      revision,
      kas: {
        enabled: false,
        externalUrl: null,
        externalK8sProxyUrl: null,
        version: null,
      },
      enterprise,
    });
  });
  api.get('/version', (c) => {
    const auth = authenticate(c, c.get('credential'), readScopes('read_user'));
    if (auth instanceof Response) return auth;
    return c.json({ version, revision });
  });
}
