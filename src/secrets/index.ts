export { createSecretService, checkSecretName, checkSecretHosts, secretView, setSecretHint } from './service.ts';
export type { SecretService, SecretServiceDeps, SecretView } from './service.ts';
