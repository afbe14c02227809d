import { InputError } from './errors.ts';
import { isLoopbackHostname } from './addresses.ts';

export type BaseUrlOptions = { allowHttp?: boolean };

/**
 * Turns what a user typed into the instance's base URL: no scheme → https; trailing `/` and `/api/v4`
 * stripped; a subpath (`https://host/gitlab`) kept. Refuses credentials, query, fragment, and plain
 * http unless the operator allows it or the host is loopback. Throws InputError on field `baseUrl`.
 */
export function normaliseBaseUrl(input: string, options: BaseUrlOptions = {}): string {
  const field = 'baseUrl';
  const typed = input.trim();
  if (typed === '') throw new InputError('invalid_url', 'The GitLab URL is empty.', { field });
  if (/\s/.test(typed)) throw new InputError('invalid_url', 'The GitLab URL must not contain spaces.', { field });

  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(typed);
  if (!hasScheme && /^[a-z][a-z0-9+.-]*:(?!\d)/i.test(typed)) {
    throw new InputError('invalid_url', `The GitLab URL must use https:// (got "${schemeOf(typed)}:").`, { field });
  }
  let url: URL;
  try {
    url = new URL(hasScheme ? typed : `https://${typed}`);
  } catch {
    throw new InputError('invalid_url', `"${typed}" is not a valid URL.`, { field });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InputError('invalid_url', `The GitLab URL must use https:// (got "${url.protocol}").`, { field });
  }
  if (url.username !== '' || url.password !== '') {
    throw new InputError(
      'invalid_url',
      'The GitLab URL must not contain a user name or password; give the token separately.',
      { field },
    );
  }
  if (url.search !== '' || typed.includes('?')) {
    throw new InputError('invalid_url', 'The GitLab URL must not contain a query (?…).', { field });
  }
  if (url.hash !== '' || typed.includes('#')) {
    throw new InputError('invalid_url', 'The GitLab URL must not contain a fragment (#…).', { field });
  }
  if (url.hostname === '') throw new InputError('invalid_url', 'The GitLab URL has no host.', { field });
  if (url.protocol === 'http:' && !options.allowHttp && !isLoopbackHostname(url.hostname)) {
    throw new InputError(
      'insecure_url',
      `Plain http is not allowed for ${url.hostname}: use https://, or ask the operator to set FORGELINK_ALLOW_HTTP=true.`,
      { field },
    );
  }

  let path = url.pathname.replace(/\/+$/, '');
  // Users paste the API root (`…/api/v4`) as often as the instance URL.
  path = path.replace(/\/api\/v4$/i, '').replace(/\/+$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

function schemeOf(text: string): string {
  return text.slice(0, text.indexOf(':'));
}

/** `host[:port]` of a normalised base URL, as a connection's `host` field shows it (docs/contract.md). */
export function hostOf(baseUrl: string): string {
  return new URL(baseUrl).host;
}

/** `<base>/api/v4` + path, keeping the subpath. */
export function apiUrl(baseUrl: string, path: string): string {
  return `${baseUrl}/api/v4${path.startsWith('/') ? path : `/${path}`}`;
}

/** GitLab's token creation page, prefilled with a name and scopes (GitLab docs: personal access tokens). */
export function tokenCreationUrl(baseUrl: string, name: string, scopes: readonly string[]): string {
  const query = new URLSearchParams({ name, scopes: scopes.join(',') });
  return `${baseUrl}/-/user_settings/personal_access_tokens?${query.toString().replaceAll('%2C', ',')}`;
}
