import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ConflictError,
  DEFAULT_ROTATION_LIFETIME_DAYS,
  DEFAULT_ROTATION_THRESHOLD_DAYS,
  ForgelinkError,
  InputError,
  ROTATED_TOKEN_PURPOSE,
  UpstreamError,
  auditEntry,
  isFinalStatus,
  isRotationDue,
  rotationExpiryDate,
  rotationUnsupported,
  tokenState,
  type Connection,
  type LockedConnection,
  type RotatedToken,
  type RotationAnswer,
  type RotationIntent,
  type SecretBinding,
  type TokenRotation,
  type TokenState,
} from '../core/index.ts';
import { bindingForSecret } from '../vault/index.ts';
import { notRotated, selfState } from './rotation-gitlab.ts';
import {
  LOST_REASON,
  ROTATION_REQUEST_MS,
  ROTATION_SETTLE_MS,
  ROTATION_WAIT_MS,
  type RotationCause,
  type RotationOutcome,
  type RotatorDeps,
} from './rotation-types.ts';
import { openSecret, TOKEN_PURPOSE } from './sealed.ts';

export { ROTATION_REQUEST_MS, ROTATION_SETTLE_MS, ROTATION_WAIT_MS } from './rotation-types.ts';
export type { RotationCause, RotationOutcome, RotationStep, RotatorDeps, RotatorLogger } from './rotation-types.ts';

/** Retries for storing GitLab's answer: the process holds the only copy of the new token until one succeeds. */
const ANSWER_RECORD_DELAYS_MS = [100, 500, 1_000, 2_000, 5_000, 10_000];
/** After a failed rotation, due tokens are handed out without trying again for this long (in this process). */
const RETRY_AFTER_FAILURE_MS = 15 * 60_000;

/** What the connection's lock told us, and what to do next outside it. */
type Decision =
  | { kind: 'done'; outcome: RotationOutcome }
  | { kind: 'promoted'; before: Connection; after: Connection; intent: RotationIntent; answer: RotationAnswer }
  | { kind: 'busy'; until: number }
  | { kind: 'stale'; intent: RotationIntent }
  | { kind: 'claimable'; connection: Connection }
  | { kind: 'claimed'; intent: RotationIntent; connection: Connection; token: string };

type Options = { force: boolean; claim: boolean; cause: RotationCause };

/*
 * Rotates personal access tokens through `POST /personal_access_tokens/self/rotate`, crash-safely:
 *
 * 1. Under the connection's lock a write-ahead intent is committed (`token_rotations`). Its existence is the claim:
 *    nobody starts another rotation of the connection while it exists, in any process.
 * 2. GitLab is asked, outside any lock and transaction.
 * 3. The answer is sealed and stored on the intent in a transaction of its own, before anything else is done with it.
 * 4. Under the lock the new token replaces the old one, the expiry moves and the intent goes, in one transaction.
 *
 * Whoever finds an intent with an answer completes step 4. An intent without one, once old enough that no rotation can
 * still be under way (ROTATION_SETTLE_MS), is resolved by asking GitLab about the old token: still active means GitLab
 * never rotated, and the intent is dropped; revoked means the answer was lost, and the connection is marked revoked.
 * The old token is never presented for rotation again: GitLab's reuse detection would revoke its successor.
 *
 * What no design on our side can close: GitLab has rotated but its answer never reaches us (network, or the process
 * dies before step 3 commits, a few milliseconds). The connection then ends up revoked with a clear reason.
 *
 * Each step is a function of its own below, taking the rotator's context (`RotatorContext`) first.
 */

/** A rotator's dependencies with the defaults applied, and what it keeps between calls in this process. */
type RotatorContext = RotatorDeps & {
  settleMs: number;
  requestMs: number;
  waitMs: number;
  pollMs: number;
  newAttemptId: () => string;
  /** The pass under way per connection and kind of call, shared by the callers in this process. */
  inflight: Map<string, Promise<RotationOutcome>>;
  /** GitLab's last refusal of a rotation per connection, handed back until `until` instead of asking again. */
  failures: Map<string, { until: number; outcome: RotationOutcome }>;
};

function answerBinding(intent: RotationIntent): SecretBinding {
  return { ownerId: intent.ownerId, recordId: intent.attemptId, purpose: ROTATED_TOKEN_PURPOSE };
}

async function recordAudit(ctx: RotatorContext, entry: Parameters<typeof auditEntry>[1]): Promise<void> {
  try {
    await ctx.audit?.record(auditEntry(ctx.clock.now(), entry));
  } catch (error) {
    ctx.logger?.warn({ err: error, action: entry.action, connectionId: entry.connectionId }, 'audit entry not written');
  }
}

/** Step 4 (or its recovery): the answer becomes the connection's token and the intent goes, in the lock's transaction. */
async function promote(ctx: RotatorContext, locked: LockedConnection, intent: RotationIntent, answer: RotationAnswer): Promise<Connection> {
  const updated = await install(ctx, locked, intent, answer);
  await locked.setRotationIntent(null);
  return updated;
}

/** Replaces the connection's token with the answer's and moves its expiry. */
async function install(ctx: RotatorContext, locked: LockedConnection, intent: RotationIntent, answer: RotationAnswer): Promise<Connection> {
  const { connection } = locked;
  const secret = await locked.getSecret(TOKEN_PURPOSE);
  if (secret === null) throw new ConflictError('token_missing', `Connection ${connection.id} has no stored token.`);
  const token = ctx.vault.open(answer.sealedToken, answerBinding(intent));
  const rotation: TokenRotation = {
    ...(connection.rotation ?? { enabled: false, lifetimeDays: DEFAULT_ROTATION_LIFETIME_DAYS, thresholdDays: DEFAULT_ROTATION_THRESHOLD_DAYS }),
    lastRotatedAt: ctx.clock.now().toISOString(),
  };
  const updated = await locked.update({
    secrets: [{ id: secret.id, sealed: ctx.vault.seal(token, bindingForSecret(secret)) }],
    patch: {
      expiresAt: answer.expiresAt ?? intent.requestedExpiresAt,
      scopes: answer.scopes ?? connection.scopes,
      rotation,
      status: 'active',
      statusReason: null,
    },
  });
  return updated;
}

async function auditRotation(ctx: RotatorContext, before: Connection, after: Connection, intent: RotationIntent, answer: RotationAnswer, recovered: boolean) {
  await recordAudit(ctx, {
    ownerId: before.userId,
    actor: intent.actor,
    action: 'token.rotated',
    connectionId: before.id,
    reason: intent.reason,
    details: { tokenId: answer.tokenId, expiresAt: after.expiresAt, previousExpiresAt: before.expiresAt, recovered },
  });
  ctx.logger?.info({ connectionId: before.id, expiresAt: after.expiresAt, recovered }, 'personal access token rotated');
}

/** Under the lock: complete, wait for, or resolve a pending rotation; otherwise decide whether to start one. */
async function decide(ctx: RotatorContext, locked: LockedConnection, options: Options): Promise<Decision> {
  const { connection } = locked;
  const now = ctx.clock.now();
  const intent = await locked.rotationIntent();
  if (intent !== null) {
    if (intent.answer !== null) {
      return { kind: 'promoted', before: connection, after: await promote(ctx, locked, intent, intent.answer), intent, answer: intent.answer };
    }
    const startedAt = Date.parse(intent.startedAt);
    return now.getTime() - startedAt < ctx.settleMs ? { kind: 'busy', until: startedAt + ctx.requestMs } : { kind: 'stale', intent };
  }
  if (!options.force && !isRotationDue(connection, now)) return { kind: 'done', outcome: { status: 'current', connection } };
  const unsupported = rotationUnsupported(connection);
  if (unsupported !== null) {
    return { kind: 'done', outcome: { status: 'failed', error: new InputError('rotation_unsupported', unsupported, { field: 'rotation' }) } };
  }
  if (isFinalStatus(connection.status)) {
    // Presenting a revoked token to the rotate endpoint is exactly what GitLab's reuse detection punishes.
    const error = new ConflictError('connection_unusable', `This connection's token is ${connection.status}; create a new token and reconnect.`);
    return { kind: 'done', outcome: { status: 'failed', error } };
  }
  if (!options.claim) return { kind: 'claimable', connection };
  const secret = await locked.getSecret(TOKEN_PURPOSE);
  if (secret === null) {
    return { kind: 'done', outcome: { status: 'failed', error: new ConflictError('token_missing', `Connection ${connection.id} has no stored token.`) } };
  }
  const claimed: RotationIntent = {
    connectionId: connection.id,
    ownerId: connection.userId,
    attemptId: ctx.newAttemptId(),
    requestedExpiresAt: rotationExpiryDate(now, connection.rotation?.lifetimeDays ?? DEFAULT_ROTATION_LIFETIME_DAYS),
    actor: options.cause.actor,
    reason: options.cause.reason,
    startedAt: now.toISOString(),
    answer: null,
  };
  await locked.setRotationIntent(claimed);
  return { kind: 'claimed', intent: claimed, connection, token: openSecret(ctx.vault, secret) };
}

function lock<T>(ctx: RotatorContext, connection: Connection, use: (locked: LockedConnection) => Promise<T>): Promise<T | null> {
  return ctx.store.withConnectionLock(connection.userId, connection.id, use);
}

/** Steps 2 to 4 for the intent this process just committed. */
async function carryOut(ctx: RotatorContext, claim: Extract<Decision, { kind: 'claimed' }>): Promise<RotationOutcome> {
  const { intent, connection } = claim;
  ctx.afterStep?.('claimed');
  await recordAudit(ctx, { ownerId: connection.userId, actor: intent.actor, action: 'token.decrypted', connectionId: connection.id, reason: 'rotation' });
  const client = ctx.gitlab({ baseUrl: connection.baseUrl, caPem: connection.caPem }, { token: claim.token, kind: 'pat' });
  let rotated: RotatedToken;
  try {
    // Never present a revoked token to the rotate endpoint: if the user rotated it in GitLab themselves, reuse
    // detection would revoke the successor they now use elsewhere. `/personal_access_tokens/self` tells first.
    const probed = await selfState(client);
    if (probed.status !== 'active') return abandon(ctx, connection, intent, probed);
    rotated = await client.rotateSelf(intent.requestedExpiresAt);
  } catch (error) {
    // The rotate endpoint's refusal says something about the token only when it is a 401 (the resource rule).
    if (notRotated(error)) return abandon(ctx, connection, intent, tokenState({ kind: 'failed', error, asked: 'resource' }));
    ctx.logger?.warn({ connectionId: connection.id, err: error }, 'token rotation outcome unknown; kept for recovery');
    return { status: 'unknown', error };
  } finally {
    await client.close();
  }
  ctx.afterStep?.('answer-received');
  const answer: RotationAnswer = {
    sealedToken: ctx.vault.seal(rotated.token, answerBinding(intent)),
    tokenId: rotated.id,
    expiresAt: rotated.expiresAt,
    scopes: rotated.scopes,
    receivedAt: ctx.clock.now().toISOString(),
  };
  const recorded = await recordAnswer(ctx, intent, answer);
  ctx.afterStep?.('answer-recorded');
  const finished = await lock(ctx, connection, async (locked) => {
    const current = await locked.rotationIntent();
    if (current?.attemptId === intent.attemptId) return { connection: await promote(ctx, locked, intent, answer), recovered: false };
    // Someone found our recorded answer and completed the rotation already.
    if (recorded) return { connection: locked.connection, recovered: true };
    // Our intent was resolved without us (we outlasted ROTATION_SETTLE_MS, or could not store the answer): the token
    // in hand is still the newest of its family, so it becomes the connection's all the same.
    return { connection: await install(ctx, locked, intent, answer), recovered: false };
  });
  if (finished === null) {
    ctx.logger?.warn({ connectionId: connection.id }, 'connection disconnected during its token rotation; the new token stays unused at GitLab');
    return { status: 'gone' };
  }
  if (!finished.recovered) await auditRotation(ctx, connection, finished.connection, intent, answer, false);
  return { status: 'rotated', connection: finished.connection, recovered: finished.recovered };
}

/** Step 3, retried: until it commits, this process holds the only copy of a token GitLab has swapped in. */
async function recordAnswer(ctx: RotatorContext, intent: RotationIntent, answer: RotationAnswer): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.store.recordRotationAnswer(intent.ownerId, intent.connectionId, intent.attemptId, answer);
    } catch (error) {
      const wait = ANSWER_RECORD_DELAYS_MS[attempt];
      if (wait === undefined) {
        ctx.logger?.warn({ connectionId: intent.connectionId, err: error }, 'could not store the rotated token; trying to store it directly');
        return false;
      }
      await delay(wait);
    }
  }
}

/** GitLab said no: nothing was rotated. The intent goes; what GitLab's answer means for the token is recorded. */
async function abandon(ctx: RotatorContext, connection: Connection, intent: RotationIntent, state: TokenState): Promise<RotationOutcome> {
  const { error } = state;
  const failure = error instanceof ForgelinkError ? error : new UpstreamError('bad_response', 'GitLab refused the rotation.', { cause: error });
  await lock(ctx, connection, async (locked) => {
    const current = await locked.rotationIntent();
    if (current?.attemptId !== intent.attemptId) return;
    await locked.setRotationIntent(null);
    if (state.status !== 'unchanged' && state.status !== 'active') {
      await locked.update({ patch: { status: state.status, statusReason: failure.message, checkedAt: ctx.clock.now().toISOString() } });
    }
  });
  ctx.logger?.warn({ connectionId: connection.id, code: failure.code }, 'GitLab refused the token rotation');
  return { status: 'failed', error: failure };
}

/**
 * An intent without an answer, old enough that its rotation cannot still be under way: ask GitLab about the old
 * token (`GET /personal_access_tokens/self` works with any scope) and act under the lock if the intent is unchanged.
 */
async function resolveStale(ctx: RotatorContext, connection: Connection, intent: RotationIntent): Promise<RotationOutcome | 'cleared'> {
  const secret = await ctx.store.getSecret(connection.userId, connection.id, TOKEN_PURPOSE);
  if (secret === null) return { status: 'failed', error: new ConflictError('token_missing', `Connection ${connection.id} has no stored token.`) };
  const client = ctx.gitlab({ baseUrl: connection.baseUrl, caPem: connection.caPem }, { token: openSecret(ctx.vault, secret), kind: 'pat' });
  const verdict = await selfState(client).finally(() => client.close());
  // Only active, expired and revoked settle what happened to the rotation; anything else is asked again later.
  if (verdict.status !== 'active' && verdict.status !== 'expired' && verdict.status !== 'revoked') return { status: 'unknown', error: verdict.error };
  const settled = await lock(ctx, connection, async (locked): Promise<RotationOutcome | 'cleared' | 'changed'> => {
    const current = await locked.rotationIntent();
    if (current === null || current.attemptId !== intent.attemptId || current.answer !== null) return 'changed';
    await locked.setRotationIntent(null);
    if (verdict.status === 'active') return 'cleared';
    const checkedAt = ctx.clock.now().toISOString();
    if (verdict.status === 'expired') {
      await locked.update({ patch: { status: 'expired', statusReason: 'The token expired before it could be rotated; create a new token and reconnect.', checkedAt } });
      return { status: 'failed', error: new UpstreamError('token_expired', 'The token expired before it could be rotated.') };
    }
    return { status: 'lost', connection: await locked.update({ patch: { status: 'revoked', statusReason: LOST_REASON, checkedAt } }) };
  });
  if (settled === null) return { status: 'gone' };
  if (settled === 'changed') return 'cleared';
  if (settled === 'cleared') {
    ctx.logger?.info({ connectionId: connection.id }, 'interrupted token rotation never reached GitLab; the token is unchanged');
    return 'cleared';
  }
  if (settled.status === 'lost') {
    ctx.logger?.warn({ connectionId: connection.id }, 'token rotation answer lost; connection marked revoked');
    await recordAudit(ctx, {
      ownerId: connection.userId,
      actor: 'system',
      action: 'connection.status_changed',
      connectionId: connection.id,
      reason: 'rotation',
      details: { from: connection.status, to: 'revoked', why: 'rotation_answer_lost' },
    });
  }
  return settled;
}

/** One pass: recover what is pending, then (when allowed and due) rotate. */
async function attempt(ctx: RotatorContext, connection: Connection, options: Options): Promise<RotationOutcome> {
  // A stale intent resolved as "never happened" lets the pass go on; bounded, in case others keep interfering.
  for (let round = 0; round < 3; round++) {
    let decision = await lock(ctx, connection, (locked) => decide(ctx, locked, { ...options, claim: false }));
    if (decision === null) return { status: 'gone' };
    if (decision.kind === 'claimable') {
      // Nothing pending; the caller only wanted pending rotations dealt with.
      if (!options.claim) return { status: 'current', connection: decision.connection };
      if (ctx.inUse !== undefined && (await ctx.inUse(connection))) {
        if (!options.force) return { status: 'deferred' };
        const error = new ConflictError('connection_in_use', 'Runs are using this connection\'s token now, and rotating it would cut them off. Try again when they have finished.');
        return { status: 'failed', error };
      }
      decision = await lock(ctx, connection, (locked) => decide(ctx, locked, options));
      if (decision === null) return { status: 'gone' };
    }
    switch (decision.kind) {
      case 'done':
        return decision.outcome;
      case 'promoted':
        await auditRotation(ctx, decision.before, decision.after, decision.intent, decision.answer, true);
        return { status: 'rotated', connection: decision.after, recovered: true };
      case 'busy':
        return { status: 'busy', until: decision.until };
      case 'claimed':
        return carryOut(ctx, decision);
      case 'stale': {
        const resolved = await resolveStale(ctx, connection, decision.intent);
        if (resolved !== 'cleared') return resolved;
        continue;
      }
      case 'claimable':
        return { status: 'busy', until: ctx.clock.now().getTime() };
    }
  }
  return { status: 'busy', until: ctx.clock.now().getTime() };
}

/**
 * `attempt`, waiting while another caller's rotation can still be under way (not for one whose request must have
 * ended without an answer: that waits for ROTATION_SETTLE_MS, too long to hold a caller). Callers in this process
 * share one pass per connection.
 */
function run(ctx: RotatorContext, connection: Connection, options: Options): Promise<RotationOutcome> {
  const key = `${connection.id}\0${options.force}\0${options.claim}`;
  const running = ctx.inflight.get(key);
  if (running !== undefined) return running;
  // A rotation GitLab refused would be refused again on every use of the token; a user asking explicitly retries,
  // and refusals of our own (runs using the token) pass by themselves.
  const failed = ctx.failures.get(connection.id);
  if (!options.force && options.claim && failed !== undefined && ctx.clock.now().getTime() < failed.until) return Promise.resolve(failed.outcome);
  const pass = (async () => {
    const deadline = ctx.clock.now().getTime() + ctx.waitMs;
    // Bounded by polls as well as by the clock: an injected clock that stands still must not hold a caller forever.
    for (let polls = Math.ceil(ctx.waitMs / ctx.pollMs); ; polls--) {
      const outcome = await attempt(ctx, connection, options);
      const now = ctx.clock.now().getTime();
      if (outcome.status === 'failed' && outcome.error instanceof UpstreamError) {
        ctx.failures.set(connection.id, { until: now + RETRY_AFTER_FAILURE_MS, outcome });
      }
      if (outcome.status === 'rotated' || outcome.status === 'current') ctx.failures.delete(connection.id);
      if (outcome.status !== 'busy' || polls <= 0 || now >= Math.min(deadline, outcome.until)) return outcome;
      await delay(ctx.pollMs);
    }
  })().finally(() => ctx.inflight.delete(key));
  ctx.inflight.set(key, pass);
  return pass;
}

/** After a restart: completes every interrupted rotation that has an answer, resolves those that cannot still be running. */
async function recoverPending(ctx: RotatorContext): Promise<{ connectionId: string; status: RotationOutcome['status'] }[]> {
  const results: { connectionId: string; status: RotationOutcome['status'] }[] = [];
  for (const intent of await ctx.store.listRotationIntents()) {
    const connection = await ctx.store.getConnection(intent.ownerId, intent.connectionId);
    if (connection === null) continue;
    const outcome = await attempt(ctx, connection, { force: false, claim: false, cause: { actor: 'system', reason: 'recovery' } });
    results.push({ connectionId: connection.id, status: outcome.status });
  }
  return results;
}

/** The rotator: the steps above with `deps` and this process's memory of passes and refusals. */
export function createRotator(deps: RotatorDeps) {
  const ctx: RotatorContext = {
    ...deps,
    settleMs: deps.settleMs ?? ROTATION_SETTLE_MS,
    requestMs: deps.requestMs ?? ROTATION_REQUEST_MS,
    waitMs: deps.waitMs ?? ROTATION_WAIT_MS,
    pollMs: deps.pollMs ?? 200,
    newAttemptId: deps.newAttemptId ?? randomUUID,
    inflight: new Map(),
    failures: new Map(),
  };
  return {
    /**
     * Rotates when rotation is on and the token is due (also completing or resolving an interrupted rotation).
     * Never throws for GitLab's sake: the outcome says what happened. Used before a token is handed out, and by the
     * health monitor.
     */
    rotateIfDue(connection: Connection, cause: RotationCause = { actor: 'system', reason: 'use' }): Promise<RotationOutcome> {
      return run(ctx, connection, { force: false, claim: true, cause });
    },

    /** Rotates now whatever the threshold (`POST /connections/:id/rotate`); refused while runs use the token. */
    rotateNow(connection: Connection, cause: RotationCause): Promise<RotationOutcome> {
      return run(ctx, connection, { force: true, claim: true, cause });
    },

    /**
     * Waits until no rotation of the connection is under way and completes one left with an answer; starts none.
     * The token provider calls it when GitLab refused a token that may have just been rotated.
     */
    settle(connection: Connection): Promise<RotationOutcome> {
      return run(ctx, connection, { force: false, claim: false, cause: { actor: 'system', reason: 'recovery' } });
    },

    /** After a restart: completes every interrupted rotation that has an answer, resolves those that cannot still be running. */
    recoverPending(): Promise<{ connectionId: string; status: RotationOutcome['status'] }[]> {
      return recoverPending(ctx);
    },
  };
}

export type Rotator = ReturnType<typeof createRotator>;
