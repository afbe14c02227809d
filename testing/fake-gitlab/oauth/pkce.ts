import { createHash, timingSafeEqual } from 'node:crypto';

/** RFC 7636 section 4.2: BASE64URL(SHA256(ASCII(code_verifier))), no padding. */
export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

function same(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * AuthorizationCodeRequest#validate_code_verifier: a grant without PKCE passes only when no verifier is
 * sent either; one with PKCE needs a verifier that reproduces the challenge.
 */
export function codeVerifierValid(
  grant: { codeChallenge: string | null; codeChallengeMethod: string | null },
  verifier: string | undefined,
): boolean {
  const usesPkce = grant.codeChallenge !== null && grant.codeChallenge !== '';
  if (!usesPkce && (verifier === undefined || verifier === '')) return true;
  if (verifier === undefined || grant.codeChallenge === null) return false;
  if (grant.codeChallengeMethod === 'S256') return same(grant.codeChallenge, s256Challenge(verifier));
  if (grant.codeChallengeMethod === 'plain') return same(grant.codeChallenge, verifier);
  return false;
}
