import type { Kysely, Selectable } from 'kysely';
import type { Session, SessionStore } from '../core/index.ts';
import { JOINED_USER_COLUMNS, joinedUser } from './rows.ts';
import type { DatabaseSchema, SessionsTable } from './tables.ts';

/** Dashboard sessions, keyed by the hash of their cookie value. */
export function createSessionStore(db: Kysely<DatabaseSchema>): SessionStore {
  return {
    async createSession(session) {
      await db
        .insertInto('sessions')
        .values({
          id: session.id,
          user_id: session.userId,
          csrf_token: session.csrfToken,
          created_at: session.createdAt,
          last_seen_at: session.lastSeenAt,
          expires_at: session.expiresAt,
        })
        .execute();
    },

    async getSession(id) {
      // One query per dashboard request: the session and its user together.
      const row = await db
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .selectAll('sessions')
        .select(JOINED_USER_COLUMNS)
        .where('sessions.id', '=', id)
        .executeTakeFirst();
      if (row === undefined) return null;
      return { session: sessionFromRow(row), user: joinedUser(row) };
    },

    async touchSession(id, times) {
      await db
        .updateTable('sessions')
        .set({ last_seen_at: times.lastSeenAt, expires_at: times.expiresAt })
        .where('id', '=', id)
        .execute();
    },

    async deleteSession(id) {
      await db.deleteFrom('sessions').where('id', '=', id).execute();
    },

    async deleteUserSessions(userId) {
      const result = await db.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async deleteExpiredSessions(now) {
      const result = await db.deleteFrom('sessions').where('expires_at', '<', now).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

function sessionFromRow(row: Selectable<SessionsTable>): Session {
  return {
    id: row.id,
    userId: row.user_id,
    csrfToken: row.csrf_token,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
  };
}
