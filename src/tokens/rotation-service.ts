import {
  ConflictError,
  InputError,
  NotFoundError,
  UpstreamError,
  applyRotationSettings,
  connectionView,
  rotationUnsupported,
  type Clock,
  type Connection,
  type ConnectionStore,
  type ConnectionView,
  type RotationSettingsInput,
} from '../core/index.ts';
import type { Rotator } from './rotator.ts';
import { LOST_REASON, type RotationOutcome } from './rotation-types.ts';

export type RotationServiceDeps = { store: ConnectionStore; rotator: Pick<Rotator, 'rotateNow'>; clock: Clock };

/** What users change and trigger about their tokens' rotation (`PATCH /connections/:id`, `POST /connections/:id/rotate`). */
export function createRotationService(deps: RotationServiceDeps) {
  const { store, clock } = deps;

  async function load(userId: string, id: string): Promise<Connection> {
    const connection = await store.getConnection(userId, id);
    if (connection === null) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
    return connection;
  }

  return {
    /**
     * Turns rotation on or off and sets its lifetime and threshold. Turning it on is refused (400 naming the field)
     * for OAuth connections and for tokens whose scopes allow neither api nor self_rotate. Written under the
     * connection's lock, so it never overwrites what a rotation finishing at the same time records.
     */
    async configure(userId: string, id: string, input: RotationSettingsInput): Promise<ConnectionView> {
      const updated = await store.withConnectionLock(userId, id, async (locked) => {
        const { connection } = locked;
        const unsupported = rotationUnsupported(connection);
        if (unsupported !== null && (input.enabled || connection.kind === 'oauth')) {
          throw new InputError('rotation_unsupported', unsupported, { field: 'rotation.enabled' });
        }
        return locked.update({ patch: { rotation: applyRotationSettings(connection.rotation, input) } });
      });
      if (updated === null) throw new NotFoundError('connection_not_found', `No connection ${id}.`);
      return connectionView(updated, clock.now());
    },

    /** Rotates the token now, whatever its expiry; the user is the actor in the audit trail. */
    async rotate(userId: string, id: string): Promise<ConnectionView> {
      const connection = await load(userId, id);
      return connectionView(rotatedOrThrow(await deps.rotator.rotateNow(connection, { actor: userId, reason: 'manual' }), id), clock.now());
    },
  };
}

/** A manual rotation's outcome in words the user can act on. */
function rotatedOrThrow(outcome: RotationOutcome, id: string): Connection {
  switch (outcome.status) {
    case 'rotated':
    case 'current':
      return outcome.connection;
    case 'busy':
      throw new ConflictError('rotation_in_progress', "This connection's token is being rotated right now; try again in a moment.");
    case 'deferred':
      throw new ConflictError('connection_in_use', "Runs are using this connection's token now; try again when they have finished.");
    case 'failed':
      throw outcome.error;
    case 'unknown':
      throw new ConflictError(
        'rotation_outcome_unknown',
        'GitLab did not answer the rotation. forgelink will find out whether it happened within a few minutes; until then the connection keeps its current token.',
        { cause: outcome.error },
      );
    case 'lost':
      throw new UpstreamError('token_revoked', LOST_REASON);
    case 'gone':
      throw new NotFoundError('connection_not_found', `No connection ${id}.`);
  }
}

export type RotationService = ReturnType<typeof createRotationService>;
