import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codeVerifierValid, s256Challenge } from './oauth/pkce.ts';
import { redirectUriAllowed, redirectUriMatches, withQuery } from './oauth/redirect-uri.ts';
import { addApplication, createGrant, createOAuthState, grantAccessible, issueToken, tokenAccessible } from './oauth/state.ts';

for (const [verifier, challenge] of [
  // RFC 7636 appendix B.
  ['dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'],
  // doc/api/oauth2.md.
  ['ks02i3jdikdo2k0dkfodf3m39rjfjsdk0wk349rj3jrhf', '2i0WFA-0AerkjQm4X4oDEhqA17QIAKNjXpagHBXmO_U'],
] as const) {
  test(`S256 challenge of ${verifier}`, () => assert.equal(s256Challenge(verifier), challenge));
}

const s256 = { codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', codeChallengeMethod: 'S256' };
const none = { codeChallenge: null, codeChallengeMethod: null };
for (const [grant, verifier, expected] of [
  [s256, 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', true],
  [s256, 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj', false],
  [s256, undefined, false],
  [none, undefined, true],
  [none, 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', false],
] as const) {
  test(`verifier ${verifier ?? '(none)'} for a ${grant.codeChallengeMethod ?? 'non-PKCE'} code: ${expected}`, () =>
    assert.equal(codeVerifierValid(grant, verifier), expected));
}

// Doorkeeper's URIChecker.matches?, requested against registered.
for (const [requested, registered, expected] of [
  ['https://app.example.com/cb', 'https://app.example.com/cb', true],
  ['https://APP.example.com:443/cb', 'https://app.example.com/cb', true],
  ['https://app.example.com/cb?extra=1', 'https://app.example.com/cb', true],
  ['https://app.example.com/cb?b=2&a=1', 'https://app.example.com/cb?a=1&b=2', true],
  ['https://app.example.com/cb', 'https://app.example.com/cb?a=1', false],
  ['https://app.example.com/cb/', 'https://app.example.com/cb', false],
  ['http://app.example.com/cb', 'https://app.example.com/cb', false],
  ['https://app.example.com:8443/cb', 'https://app.example.com/cb', false],
  ['http://127.0.0.1:49152/cb', 'http://127.0.0.1/cb', true],
  ['http://[::1]:49152/cb', 'http://[::1]:8080/cb', true],
  ['http://localhost:49152/cb', 'http://localhost/cb', false],
  ['http://127.0.0.1:49152/other', 'http://127.0.0.1/cb', false],
] as const) {
  test(`${requested} ${expected ? 'matches' : 'does not match'} ${registered}`, () =>
    assert.equal(redirectUriMatches(requested, registered), expected));
}

test('a redirect URI with a fragment or without a host is never allowed', () => {
  assert.equal(redirectUriAllowed('https://app.example.com/cb#x', ['https://app.example.com/cb']), false);
  assert.equal(redirectUriAllowed('not a uri', ['https://app.example.com/cb']), false);
  assert.equal(redirectUriAllowed('https://b.example.com/cb', ['https://a.example.com/cb', 'https://b.example.com/cb']), true);
});

test('withQuery keeps the URI\'s query, drops blank values and encodes spaces as +', () => {
  assert.equal(
    withQuery('https://app.example.com/cb?tenant=a%20b', { code: 'c0de', state: null, error_description: 'The resource owner denied.' }),
    'https://app.example.com/cb?tenant=a+b&code=c0de&error_description=The+resource+owner+denied.',
  );
});

test('codes live 10 minutes and tokens their lifetime, both up to and including the last millisecond', () => {
  const oauth = createOAuthState({ tokenLifetimeSeconds: 60 });
  const application = addApplication(oauth, { redirectUri: 'https://app.example.com/cb', scopes: ['api'] }, '2026-01-01T00:00:00Z');
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const grant = createGrant(
    oauth,
    { application, userId: 1, redirectUri: 'https://app.example.com/cb', scopes: ['api'], codeChallenge: null, codeChallengeMethod: null },
    t0,
  );
  assert.equal(grantAccessible(grant, t0 + 600_000), true);
  assert.equal(grantAccessible(grant, t0 + 600_001), false);
  const token = issueToken(oauth, { application, userId: 1, scopes: ['api'], grantType: 'authorization_code' }, t0);
  assert.equal(tokenAccessible(token, t0 + 60_000), true);
  assert.equal(tokenAccessible(token, t0 + 60_001), false);
});

test('applications need GitLab scopes and absolute redirect URIs without fragments', () => {
  const oauth = createOAuthState();
  assert.throws(() => addApplication(oauth, { redirectUri: 'https://a.example/cb', scopes: ['everything'] }, ''), /unknown OAuth scope everything/);
  assert.throws(() => addApplication(oauth, { redirectUri: '/cb', scopes: ['api'] }, ''), /absolute URI/);
  assert.throws(() => addApplication(oauth, { redirectUri: 'https://a.example/cb#x', scopes: ['api'] }, ''), /fragment/);
  assert.throws(() => addApplication(oauth, { redirectUri: 'javascript:alert(1)', scopes: ['api'] }, ''), /forbidden/);
  assert.throws(() => createOAuthState({ tokenLifetimeSeconds: 0 }), /at least|>= 1/);
});
