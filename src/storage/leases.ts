import type { Kysely } from 'kysely';
import type { LeaseStore } from '../core/index.ts';
import type { DatabaseSchema } from './tables.ts';

/**
 * Named leases (migration 0006). Taking one is a conditional UPDATE — "mine already, or expired" — and, for a
 * name nobody has taken yet, an INSERT … ON CONFLICT DO NOTHING. Each is one statement that both databases
 * apply atomically, so of two processes racing for a free or expired lease exactly one gets a row changed.
 * Times are ISO text from the caller's clock; they compare as strings on both databases.
 */
export function createLeaseStore(db: Kysely<DatabaseSchema>): LeaseStore {
  return {
    async acquire(name, holder, { now, expiresAt }) {
      const renewed = await db
        .updateTable('leases')
        .set({ holder, expires_at: expiresAt })
        .where('name', '=', name)
        .where((eb) => eb.or([eb('holder', '=', holder), eb('expires_at', '<=', now)]))
        .executeTakeFirst();
      if (renewed.numUpdatedRows > 0n) return true;
      const inserted = await db
        .insertInto('leases')
        .values({ name, holder, expires_at: expiresAt })
        .onConflict((conflict) => conflict.column('name').doNothing())
        .executeTakeFirst();
      return (inserted.numInsertedOrUpdatedRows ?? 0n) > 0n;
    },

    async release(name, holder) {
      await db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
    },
  };
}
