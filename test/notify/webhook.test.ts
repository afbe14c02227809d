import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import type { ConnectionNotification } from '../../src/core/index.ts';
import { createWebhookNotifier, webhookSignature } from '../../src/notify/index.ts';
import { lanAddress } from '../support/host-address.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

const notification: ConnectionNotification = {
  event: 'connection.status_changed',
  at: '2026-05-01T10:00:00.000Z',
  connection: {
    id: 'con_1',
    label: 'work',
    host: 'gitlab.example.com',
    account: { id: 7, username: 'bot', name: 'Bot' },
    expiresAt: '2027-01-31',
    status: 'revoked',
  },
  ownerName: 'alice',
  reason: 'GitLab says this token was revoked.',
  previousStatus: 'active',
};

function recordingLogger() {
  const lines: { level: string; meta: any; message: string }[] = [];
  return {
    lines,
    info: (meta: object, message: string) => lines.push({ level: 'info', meta, message }),
    warn: (meta: object, message: string) => lines.push({ level: 'warn', meta, message }),
  };
}

describe('notification webhook', () => {
  let receiver: WebhookReceiver | null = null;
  afterEach(async () => {
    await receiver?.close();
    receiver = null;
  });

  test('POSTs the event as JSON with an HMAC-SHA256 signature of the exact body', async () => {
    receiver = await startWebhookReceiver();
    const logger = recordingLogger();
    const notifier = createWebhookNotifier({ url: receiver.url, secret: 'hook-secret', policy: { allow: ['127.0.0.0/8'] }, logger });
    notifier.notify(notification);
    await notifier.close();

    assert.equal(receiver.deliveries.length, 1);
    const [delivery] = receiver.deliveries;
    assert.deepEqual(delivery?.json, notification);
    assert.equal(delivery?.headers['content-type'], 'application/json');
    assert.equal(delivery?.headers['x-forgelink-event'], 'connection.status_changed');
    const expected = `sha256=${createHmac('sha256', 'hook-secret').update(delivery?.body ?? '').digest('hex')}`;
    assert.equal(delivery?.headers['x-forgelink-signature'], expected);
    assert.equal(webhookSignature('hook-secret', delivery?.body ?? ''), expected);
    assert.match(String(delivery?.headers['x-forgelink-delivery']), /^dlv_/);
    assert.equal(logger.lines.at(-1)?.message, 'webhook delivered');
  });

  test('without a secret there is no signature header', async () => {
    receiver = await startWebhookReceiver();
    const notifier = createWebhookNotifier({ url: receiver.url, secret: null, policy: { allow: ['127.0.0.0/8'] }, logger: recordingLogger() });
    notifier.notify(notification);
    await notifier.close();
    assert.equal(receiver.deliveries[0]?.headers['x-forgelink-signature'], undefined);
  });

  test('retries 5xx and 429 with a doubling wait, then succeeds', async () => {
    receiver = await startWebhookReceiver({ status: (attempt) => [500, 429, 204][attempt - 1] ?? 204 });
    const waits: number[] = [];
    const notifier = createWebhookNotifier({
      url: receiver.url,
      secret: null,
      policy: { allow: ['127.0.0.0/8'] },
      logger: recordingLogger(),
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    notifier.notify(notification);
    await notifier.close();
    assert.equal(receiver.attempts(), 3);
    assert.deepEqual(waits, [1000, 2000]);
    assert.equal(receiver.deliveries.length, 1);
  });

  test('gives up after its retries, and at once on a 4xx refusal, logging it without the URL path', async () => {
    receiver = await startWebhookReceiver({ status: () => 503 });
    const logger = recordingLogger();
    const notifier = createWebhookNotifier({ url: `${receiver.url}?key=receiver-secret`, secret: null, policy: { allow: ['127.0.0.0/8'] }, logger, sleep: async () => {} });
    notifier.notify(notification);
    await notifier.idle();
    assert.equal(receiver.attempts(), 4);
    const failure = logger.lines.find((line) => line.level === 'warn');
    assert.equal(failure?.meta.problem, 'answered 503');
    assert.doesNotMatch(JSON.stringify(logger.lines), /receiver-secret|hooks\/forgelink/);
    await notifier.close();
    await receiver.close();

    receiver = await startWebhookReceiver({ status: () => 400 });
    const refused = createWebhookNotifier({ url: receiver.url, secret: null, policy: { allow: ['127.0.0.0/8'] }, logger, sleep: async () => {} });
    refused.notify(notification);
    await refused.close();
    assert.equal(receiver.attempts(), 1);
  });

  test('the outbound-address policy applies: a loopback receiver the operator did not allow is never contacted', async () => {
    receiver = await startWebhookReceiver();
    const logger = recordingLogger();
    const notifier = createWebhookNotifier({ url: receiver.url, secret: null, policy: { allow: [] }, logger, sleep: async () => {} });
    notifier.notify(notification);
    await notifier.close();
    assert.equal(receiver.attempts(), 0);
    const failure = logger.lines.find((line) => line.level === 'warn');
    assert.match(String(failure?.meta.problem), /a loopback address.*FORGELINK_OUTBOUND_ALLOW/);
    assert.equal(failure?.meta.attempts, 1, 'a refusal by the policy is not retried');
  });

  test("a receiver on this host's own LAN address is refused unless the operator allows that address", async () => {
    const lan = lanAddress();
    receiver = await startWebhookReceiver({ host: lan });
    const logger = recordingLogger();
    const refused = createWebhookNotifier({ url: receiver.url, secret: null, policy: { allow: ['127.0.0.0/8'] }, logger, sleep: async () => {} });
    refused.notify(notification);
    await refused.close();
    assert.equal(receiver.attempts(), 0);
    const failure = logger.lines.find((line) => line.level === 'warn');
    assert.equal(String(failure?.meta.problem), `${lan} resolves to ${lan}, one of this host's own addresses. The operator can allow it with FORGELINK_OUTBOUND_ALLOW.`);
    assert.equal(failure?.meta.attempts, 1, 'a refusal by the policy is not retried');

    const allowed = createWebhookNotifier({ url: receiver.url, secret: null, policy: { allow: [`${lan}/32`] }, logger, sleep: async () => {} });
    allowed.notify(notification);
    await allowed.close();
    assert.equal(receiver.deliveries.length, 1);
  });

  test('notify returns at once: a slow receiver does not hold the caller up', async () => {
    receiver = await startWebhookReceiver({ status: () => 503 });
    const notifier = createWebhookNotifier({
      url: receiver.url,
      secret: null,
      policy: { allow: ['127.0.0.0/8'] },
      logger: recordingLogger(),
      sleep: () => new Promise((resolve) => setTimeout(resolve, 50)),
    });
    // notify() is back before the receiver has even seen the first attempt, let alone the retries.
    notifier.notify(notification);
    assert.equal(receiver.attempts(), 0);
    await notifier.close();
    assert.ok(receiver.attempts() > 1, 'the delivery went on (and was retried) after notify returned');
  });
});
