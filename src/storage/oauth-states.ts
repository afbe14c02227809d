import type { Kysely, Selectable } from 'kysely';
import { ConflictError } from '../core/index.ts';
import type { OAuthState, OAuthStateStore } from '../core/index.ts';
import { isUniqueViolation } from './constraint-errors.ts';
import type { DatabaseSchema, OAuthStatesTable } from './tables.ts';

/** Started OAuth authorizations (migration 0004). A state is found by the hash of its value only. */
export function createOAuthStateStore(db: Kysely<DatabaseSchema>): OAuthStateStore {
  return {
    async saveState(state) {
      try {
        await db.insertInto('oauth_states').values(toRow(state)).execute();
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        throw new ConflictError('oauth_state_conflict', 'This OAuth state already exists.', { cause: error });
      }
    },

    async consumeState(stateHash, usedAt) {
      // One conditional UPDATE decides who uses the state first: of racing callbacks exactly one matches
      // `used_at IS NULL`, on either database, without a separate read that another caller could slip past.
      const claimed = await db
        .updateTable('oauth_states')
        .set({ used_at: usedAt })
        .where('state_hash', '=', stateHash)
        .where('used_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (claimed !== undefined) return { state: { ...fromRow(claimed), usedAt: null }, firstUse: true };
      const seen = await db.selectFrom('oauth_states').selectAll().where('state_hash', '=', stateHash).executeTakeFirst();
      return seen === undefined ? null : { state: fromRow(seen), firstUse: false };
    },

    async deleteStatesBefore(before) {
      const result = await db.deleteFrom('oauth_states').where('created_at', '<', before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

function toRow(state: OAuthState): Selectable<OAuthStatesTable> {
  return {
    id: state.id,
    state_hash: state.stateHash,
    session_id: state.sessionId,
    user_id: state.userId,
    base_url: state.baseUrl,
    verifier_sealed: state.verifierSealed,
    created_at: state.createdAt,
    used_at: state.usedAt,
  };
}

function fromRow(row: Selectable<OAuthStatesTable>): OAuthState {
  return {
    id: row.id,
    stateHash: row.state_hash,
    sessionId: row.session_id,
    userId: row.user_id,
    baseUrl: row.base_url,
    verifierSealed: row.verifier_sealed,
    createdAt: row.created_at,
    usedAt: row.used_at,
  };
}
