import { NotFoundError, type ConnectionEvent, type ConnectionEventStore, type ConnectionStore } from '../core/index.ts';

/** A status transition as the API shows it (`GET /connections/:id/events`). */
export type ConnectionEventView = Pick<ConnectionEvent, 'id' | 'at' | 'from' | 'to' | 'reason'>;

export const DEFAULT_EVENTS_LIMIT = 20;

/** A connection's status history, for its owner only: another user's connection is a 404 like a missing one. */
export function createConnectionEvents(deps: { store: ConnectionStore; events: ConnectionEventStore }) {
  return {
    async list(userId: string, id: string, limit = DEFAULT_EVENTS_LIMIT): Promise<ConnectionEventView[]> {
      if ((await deps.store.getConnection(userId, id)) === null) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
      const events = await deps.events.list(userId, id, { limit });
      return events.map(({ id: eventId, at, from, to, reason }) => ({ id: eventId, at, from, to, reason }));
    },
  };
}

export type ConnectionEvents = ReturnType<typeof createConnectionEvents>;
