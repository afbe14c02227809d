import type { ConnectionView } from '../core/index.ts';

/** The rotation line under `connections show`. */
export function rotationText(connection: Pick<ConnectionView, 'id' | 'kind' | 'rotation'>): string {
  if (connection.kind === 'oauth') return 'not needed (OAuth tokens are renewed on their own)';
  const { rotation } = connection;
  if (rotation === null || !rotation.enabled) {
    return `off${rotation?.lastRotatedAt ? `; last rotated ${rotation.lastRotatedAt}` : ''} (forgelink connections rotation ${connection.id} --enable)`;
  }
  return (
    `on: a new token for ${rotation.lifetimeDays} days when ${rotation.thresholdDays} or fewer are left` +
    `${rotation.lastRotatedAt ? `; last rotated ${rotation.lastRotatedAt}` : ''}`
  );
}
