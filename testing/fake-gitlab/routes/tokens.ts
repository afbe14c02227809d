import type { Hono } from 'hono';
import { authenticate } from '../auth.ts';
import type { AppEnv, Deps } from '../context.ts';
import { tokenEntity } from '../entities.ts';
import { today } from '../state.ts';
import { ParamReader, readParams } from '../params.ts';
import { revokeTokenFamily, rotateToken, rotationExpiryProblem } from '../token-rotation.ts';

/** Scopes lib/api/personal_access_tokens/self_rotation.rb allows (`allow_access_with_scope`). */
const ROTATE_SCOPES = ['api', 'self_rotate'] as const;

/**
 * doc/api/personal_access_tokens.md: `self` answers with any scope, but still 401s expired or revoked tokens.
 * Any other kind of token (OAuth) gets a 400 after authentication (lib/api/personal_access_tokens/self_information.rb).
 */
export function registerTokenRoutes(api: Hono<AppEnv>, deps: Deps): void {
  const { state } = deps;

  api.get('/personal_access_tokens/self', (c) => {
    const auth = authenticate(c, c.get('credential'), []);
    if (auth instanceof Response) return auth;
    if (auth.token.type !== 'personal') {
      return c.json({ message: '400 Bad request - This endpoint requires token type to be a personal access token' }, 400);
    }
    const { record } = auth.token;
    // Midnight passes during the request: today becomes the token's expiry date, the first day it is expired.
    if (state.faults.expiryDuringSelfRequest.delete(record.token)) record.expiresAt = today(state);
    return c.json(tokenEntity(state, record));
  });

  /**
   * `POST /personal_access_tokens/self/rotate` (GitLab 16.10+; lib/api/personal_access_tokens/self_rotation.rb):
   * revokes the token that authenticated the request and answers 200 with its successor
   * (Entities::PersonalAccessTokenWithToken: the token's fields plus `token`).
   */
  api.post('/personal_access_tokens/self/rotate', async (c) => {
    const credential = c.get('credential');
    // AuthFinders#validate_and_save_access_token! checks expiry before revocation, and only a revoked token on a
    // rotation path triggers reuse detection; the request then fails with the usual 401 "Token was revoked".
    if (credential.kind === 'revoked' && credential.token.type === 'personal') revokeTokenFamily(state, credential.token.record);
    const auth = authenticate(c, credential, ROTATE_SCOPES);
    if (auth instanceof Response) return auth;
    // `not_allowed! unless access_token.is_a? PersonalAccessToken`.
    if (auth.token.type !== 'personal') return c.json({ message: '405 Method Not Allowed' }, 405);

    const params = await readParams(c);
    if (params instanceof Response) return params;
    const reader = new ParamReader(params);
    const raw = reader.optionalString('expires_at');
    // Grape's `type: Date` coercion: anything but a date is "expires_at is invalid".
    if (raw !== undefined && raw !== '' && !isDate(raw)) reader.errors.push('expires_at is invalid');
    const refused = reader.response(c);
    if (refused !== null) return refused;
    const expiresAt = raw === undefined || raw === '' ? null : raw;
    const problem = expiresAt === null ? null : rotationExpiryProblem(state, expiresAt);
    // RotateService's error_response, rendered by `bad_request!(service.message)` in PersonalAccessTokensHelpers.
    if (problem !== null) return c.json({ message: `400 Bad request - ${problem}` }, 400);

    const rotated = rotateToken(state, auth.token.record, expiresAt);
    if (state.faults.rotationAnswerLoss.remaining > 0) {
      // GitLab did rotate; the answer is lost on the way back, as when a proxy in front of it gives up first.
      state.faults.rotationAnswerLoss.remaining -= 1;
      return c.html('<html><body><h1>502 Bad Gateway</h1></body></html>\n', 502);
    }
    return c.json({ ...tokenEntity(state, rotated), token: rotated.token }, 200);
  });
}

function isDate(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`)) && new Date(`${text}T00:00:00Z`).toISOString().startsWith(text);
}
