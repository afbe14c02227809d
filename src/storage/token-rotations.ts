import type { Kysely, Selectable, Transaction } from 'kysely';
import { z } from 'zod';
import { InputError, type RotationAnswer, type RotationIntent } from '../core/index.ts';
import type { DatabaseSchema, TokenRotationsTable } from './tables.ts';

type Executor = Kysely<DatabaseSchema> | Transaction<DatabaseSchema>;

/** The JSON in `token_rotations.answer`: GitLab's answer without the token, which is sealed beside it. */
const AnswerJson = z.object({
  tokenId: z.number(),
  expiresAt: z.string().nullable(),
  scopes: z.array(z.string()).nullable(),
  receivedAt: z.string(),
});

/** The connection's rotation intent (migration 0007), read through `executor` (the lock's transaction). */
export async function rotationIntentOf(executor: Executor, ownerId: string, connectionId: string): Promise<RotationIntent | null> {
  const row = await executor
    .selectFrom('token_rotations')
    .selectAll()
    .where('connection_id', '=', connectionId)
    .where('owner_id', '=', ownerId)
    .executeTakeFirst();
  return row === undefined ? null : intentFromRow(row);
}

/** Inserts the intent of a rotation that starts, or deletes the connection's intent (null). */
export async function writeRotationIntent(executor: Executor, ownerId: string, connectionId: string, intent: RotationIntent | null): Promise<void> {
  if (intent === null) {
    await deleteRotationIntent(executor, ownerId, connectionId);
    return;
  }
  if (intent.connectionId !== connectionId || intent.ownerId !== ownerId) {
    throw new InputError('intent_mismatch', 'A rotation intent must belong to the connection it is stored with.', { field: 'intent' });
  }
  // A plain insert: the caller read no intent under the connection's lock, and a second one would violate the key.
  await executor
    .insertInto('token_rotations')
    .values({
      connection_id: intent.connectionId,
      owner_id: intent.ownerId,
      attempt_id: intent.attemptId,
      requested_expires_at: intent.requestedExpiresAt,
      actor: intent.actor,
      reason: intent.reason,
      started_at: intent.startedAt,
      ...answerToRow(intent.answer),
    })
    .execute();
}

export async function deleteRotationIntent(executor: Executor, ownerId: string, connectionId: string): Promise<void> {
  await executor.deleteFrom('token_rotations').where('connection_id', '=', connectionId).where('owner_id', '=', ownerId).execute();
}

/** Puts GitLab's answer on the intent of attempt `attemptId`; false when that intent is gone (or was another attempt's). */
export async function updateRotationAnswer(
  executor: Executor,
  ownerId: string,
  connectionId: string,
  attemptId: string,
  answer: RotationAnswer,
): Promise<boolean> {
  const result = await executor
    .updateTable('token_rotations')
    .set(answerToRow(answer))
    .where('connection_id', '=', connectionId)
    .where('owner_id', '=', ownerId)
    .where('attempt_id', '=', attemptId)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Every intent, oldest first. */
export async function listRotationIntents(executor: Executor): Promise<RotationIntent[]> {
  const rows = await executor.selectFrom('token_rotations').selectAll().orderBy('started_at').orderBy('connection_id').execute();
  return rows.map(intentFromRow);
}

function answerToRow(answer: RotationAnswer | null): { answer_sealed: string | null; answer: string | null } {
  if (answer === null) return { answer_sealed: null, answer: null };
  const { sealedToken, ...fields } = answer;
  return { answer_sealed: sealedToken, answer: JSON.stringify(fields) };
}

/** Rows are parsed, not trusted: a damaged answer fails here rather than being promoted. */
function intentFromRow(row: Selectable<TokenRotationsTable>): RotationIntent {
  const answer =
    row.answer_sealed === null || row.answer === null ? null : { sealedToken: row.answer_sealed, ...AnswerJson.parse(JSON.parse(row.answer)) };
  return {
    connectionId: row.connection_id,
    ownerId: row.owner_id,
    attemptId: row.attempt_id,
    requestedExpiresAt: row.requested_expires_at,
    actor: row.actor,
    reason: row.reason,
    startedAt: row.started_at,
    answer,
  };
}
