export { createWebhookNotifier, SIGNATURE_HEADER, webhookSignature } from './webhook.ts';
export type { WebhookLogger, WebhookOptions } from './webhook.ts';
