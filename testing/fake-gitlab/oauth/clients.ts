import { timingSafeEqual } from 'node:crypto';
import type { FakeOAuthApplication, OAuthState } from './state.ts';

export interface ClientCredentials {
  uid: string;
  secret: string | undefined;
}

/**
 * Doorkeeper's client_credentials methods, :from_basic then :from_params
 * (OAuth::Client::Credentials.from_request): `Authorization: Basic base64(id:secret)`, else the
 * client_id and client_secret parameters. Null when neither names a client.
 */
export function clientCredentials(authorization: string | undefined, params: Record<string, string | undefined>): ClientCredentials | null {
  const basic = authorization?.match(/^Basic (.*)$/s);
  if (basic?.[1] !== undefined) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const uid = colon === -1 ? decoded : decoded.slice(0, colon);
    if (uid !== '') return { uid, secret: colon === -1 ? undefined : decoded.slice(colon + 1) };
  }
  const uid = params.client_id;
  return uid ? { uid, secret: params.client_secret } : null;
}

function sameSecret(given: string, expected: string): boolean {
  const left = Buffer.from(given);
  const right = Buffer.from(expected);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Application.by_uid_and_secret: a public (non-confidential) application may leave the secret out; any
 * secret that is sent must be the right one.
 */
export function authenticateClient(oauth: OAuthState, credentials: ClientCredentials | null): FakeOAuthApplication | null {
  if (!credentials) return null;
  const application = oauth.applications.get(credentials.uid);
  if (!application) return null;
  if (!credentials.secret) return application.confidential ? null : application;
  return sameSecret(credentials.secret, application.clientSecret) ? application : null;
}
