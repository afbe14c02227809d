export { createApiKeyService, MAX_ACTIVE_KEYS } from './service.ts';
export type { ApiKeyService, ApiKeyServiceDeps, KeyActor } from './service.ts';
