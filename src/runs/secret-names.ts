import { InputError } from '../core/index.ts';
import { checkSecretName } from '../secrets/index.ts';

/** More secrets than any agent needs; keeps a run's environment and audit trail bounded. */
export const MAX_RUN_SECRETS = 50;

/** The secret names a run asked for, checked and without repeats; throws InputError naming `secrets`. */
export function checkRunSecrets(names: readonly string[]): string[] {
  if (names.length > MAX_RUN_SECRETS) {
    throw new InputError('invalid_secret_name', `A run may receive at most ${MAX_RUN_SECRETS} secrets.`, { field: 'secrets' });
  }
  return [...new Set(names.map((name) => checkSecretName(name, 'secrets')))];
}
