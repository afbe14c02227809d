import { createHmac } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { newId, UpstreamError, type ConnectionNotification, type Notifier, type OutboundPolicy } from '../core/index.ts';
import { createOutboundAgent } from '../gitlab/index.ts';

export type WebhookLogger = { info(meta: object, message: string): void; warn(meta: object, message: string): void };

export type WebhookOptions = {
  /** https, or http on a loopback address (checked by the config reader). */
  url: string;
  /** Signs each body: `X-Forgelink-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
  secret: string | null;
  /** The operator's outbound-address policy: the webhook's address is judged like a GitLab instance's (invariant 4). */
  policy: OutboundPolicy;
  logger: WebhookLogger;
  /** Per attempt, connect and answer together. Default 10 s. */
  timeoutMs?: number;
  /** Attempts after the first, for network errors, 429 and 5xx. Default 3. */
  retries?: number;
  /** First wait between attempts, doubled each time. Default 1 s. */
  backoffMs?: number;
  sleep?: (ms: number) => Promise<void>;
};

export const SIGNATURE_HEADER = 'x-forgelink-signature';

/** `sha256=<hex>`: the HMAC-SHA256 of the exact body bytes, as GitHub's and GitLab's webhooks sign theirs. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

type Outcome = { ok: true } | { ok: false; retry: boolean; problem: string };

/**
 * POSTs each notification as JSON to the operator's URL in the background. A delivery is retried with a doubling
 * wait on network errors, 429 and 5xx (the receiver may be restarting) but not on other answers (it refused the
 * event, and would again); when every attempt fails it is logged and dropped. Redirects are not followed: the
 * signed body goes to the configured address only.
 */
export function createWebhookNotifier(options: WebhookOptions): Notifier {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retries = options.retries ?? 3;
  const firstBackoffMs = options.backoffMs ?? 1_000;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const agent = createOutboundAgent({ policy: options.policy, connectTimeoutMs: timeoutMs });
  // Logs name the receiver by origin only: the path or query may carry the receiver's own secret.
  const where = new URL(options.url).origin;
  const inflight = new Set<Promise<void>>();

  async function attempt(body: string, headers: Record<string, string>): Promise<Outcome> {
    try {
      const response = await request(options.url, { method: 'POST', body, headers, dispatcher: agent, signal: AbortSignal.timeout(timeoutMs) });
      // The answer's body is not needed; reading it to the end frees the connection.
      await response.body.dump();
      if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true };
      const retry = response.statusCode === 429 || response.statusCode >= 500;
      return { ok: false, retry, problem: `answered ${response.statusCode}` };
    } catch (error) {
      // The outbound policy refusing the address surfaces as an UpstreamError from the connector: it would refuse
      // again. Anything else (refused connection, timeout) may pass.
      return { ok: false, retry: !(error instanceof UpstreamError), problem: error instanceof Error ? error.message : String(error) };
    }
  }

  async function deliver(notification: ConnectionNotification): Promise<void> {
    const body = JSON.stringify(notification);
    const deliveryId = newId('dlv');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'forgelink-webhook',
      'x-forgelink-event': notification.event,
      // The same id on every attempt, so a receiver can drop a retry of something it already handled.
      'x-forgelink-delivery': deliveryId,
    };
    if (options.secret !== null) headers[SIGNATURE_HEADER] = webhookSignature(options.secret, body);
    const meta = { event: notification.event, connectionId: notification.connection.id, deliveryId, webhook: where };
    for (let tries = 0; ; tries++) {
      const outcome = await attempt(body, headers);
      if (outcome.ok) {
        options.logger.info({ ...meta, attempts: tries + 1 }, 'webhook delivered');
        return;
      }
      if (!outcome.retry || tries >= retries) {
        options.logger.warn({ ...meta, attempts: tries + 1, problem: outcome.problem }, 'webhook delivery failed; the notification is dropped');
        return;
      }
      await sleep(firstBackoffMs * 2 ** tries);
    }
  }

  async function idle(): Promise<void> {
    while (inflight.size > 0) await Promise.allSettled([...inflight]);
  }

  return {
    notify(notification) {
      const delivery = deliver(notification)
        .catch((error: unknown) => options.logger.warn({ webhook: where, problem: String(error) }, 'webhook delivery failed'))
        .finally(() => inflight.delete(delivery));
      inflight.add(delivery);
    },
    idle,
    async close() {
      await idle();
      await agent.close();
    },
  };
}
