/**
 * Request paths as GitLab reads them: the raw (percent-encoded) path after the installation's subpath, split into
 * decoded segments. Anything that could make two readers disagree about which resource a path names — a dot
 * segment (`..`, `%2e%2e`), an empty segment (`//`), a malformed escape — is an error, so the policy never judges
 * a path that GitLab (or a proxy in front of it) would resolve differently.
 */

export type SplitPath = { segments: string[]; raw: string[] } | { error: string };

/** `/gitlab/` → `/gitlab`; `` or `/` → ``. */
export function normaliseBasePath(basePath: string | undefined): string {
  const trimmed = (basePath ?? '').replace(/\/+$/, '');
  return trimmed === '' || trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** The segments of `rawPath` below `basePath`, each percent-decoded once; one trailing slash is ignored. */
export function splitRequestPath(rawPath: string, basePath: string | undefined): SplitPath {
  const base = normaliseBasePath(basePath);
  const path = rawPath.split(/[?#]/, 1)[0] ?? '';
  if (!path.startsWith('/')) return { error: 'the path does not start with "/"' };
  if (base !== '' && path !== base && !path.startsWith(`${base}/`)) return { error: `the path is outside GitLab's base path ${base}` };
  const raw = path.slice(base.length).split('/').slice(1);
  if (raw.at(-1) === '') raw.pop();
  const segments: string[] = [];
  for (const segment of raw) {
    if (segment === '') return { error: 'the path has an empty segment ("//")' };
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return { error: 'the path has a malformed percent-escape' };
    }
    if (decoded === '.' || decoded === '..') return { error: 'the path has a "." or ".." segment' };
    if (decoded.includes('\0')) return { error: 'the path has a NUL byte' };
    segments.push(decoded);
  }
  return { segments, raw };
}

/** Query parameters from a string (with or without `?`) or URLSearchParams. */
export function queryParams(query: string | URLSearchParams | undefined): URLSearchParams {
  if (query instanceof URLSearchParams) return query;
  return new URLSearchParams((query ?? '').replace(/^\?/, ''));
}
