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

/** The `Runs:` line under `connections show`: the credentials mode and run policy options the connection gives its runs. */
export function runDefaultsText(connection: Pick<ConnectionView, 'credentials' | 'policy'>): string {
  const credentials = connection.credentials === null ? "credentials as the server's default" : `credentials ${connection.credentials}`;
  const off = [
    connection.policy.allowTags === false ? 'no tags' : null,
    connection.policy.allowMerge === false ? 'no merge' : null,
    connection.policy.readOtherProjects === false ? 'no reading other projects' : null,
  ].filter((item) => item !== null);
  return `${credentials}; policy ${off.length === 0 ? 'as the operator allows' : `as the operator allows, but ${off.join(', ')}`}`;
}
