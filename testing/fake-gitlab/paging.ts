import type { Context } from 'hono';

/** Past this many records GitLab stops counting: no x-total, x-total-pages or rel="last". */
export const COUNT_LIMIT = 10_000;
/** lib/api/helpers/pagination_strategies.rb: offset paging of projects stops at this offset. */
export const OFFSET_LIMIT = 50_000;
const DEFAULT_PER_PAGE = 20;
const MAX_PER_PAGE = 100;

export interface PageParams {
  page: number;
  perPage: number;
}

function positiveInt(raw: string | null, fallback: number): number | null {
  if (raw === null || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) return null;
  return Number.parseInt(raw, 10);
}

/**
 * Reads `page` and `per_page` as GitLab does: Kaminari clamps per_page to 100 and treats a page
 * below 1 as 1; a value that is not an integer is a Grape validation error.
 */
export function readPageParams(c: Context): PageParams | Response {
  const query = new URL(c.req.url).searchParams;
  const page = positiveInt(query.get('page'), 1);
  if (page === null) return c.json({ error: 'page is invalid' }, 400);
  const perPage = positiveInt(query.get('per_page'), DEFAULT_PER_PAGE);
  if (perPage === null) return c.json({ error: 'per_page is invalid' }, 400);
  return {
    page: Math.max(1, page),
    perPage: perPage < 1 ? DEFAULT_PER_PAGE : Math.min(perPage, MAX_PER_PAGE),
  };
}

/**
 * The request URL with `changes` applied and parameters sorted by name, as Rails' `to_query`
 * writes them. It keeps the request's scheme, host, port and base path, so links stay on the
 * same origin and under the subpath.
 */
export function pageHref(requestUrl: string, changes: Record<string, string | null>): string {
  const url = new URL(requestUrl);
  const params = new URLSearchParams(url.search);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) params.delete(key);
    else params.set(key, value);
  }
  params.sort();
  url.search = params.toString();
  return url.toString();
}

/**
 * Offset paging: slices `items` and sets GitLab's headers (lib/gitlab/pagination/offset_header_builder.rb).
 * Beyond COUNT_LIMIT records the totals and rel="last" are left out.
 */
export function offsetPage<T>(c: Context, items: readonly T[], params: PageParams): T[] {
  const { page, perPage } = params;
  const start = (page - 1) * perPage;
  const slice = items.slice(start, start + perPage);
  const counted = items.length <= COUNT_LIMIT;
  const totalPages = Math.max(1, Math.ceil(items.length / perPage));
  const hasNext = start + perPage < items.length;
  const nextPage = hasNext ? page + 1 : null;
  const prevPage = page > 1 ? page - 1 : null;
  const perPageText = String(perPage);
  const href = (p: number) => pageHref(c.req.url, { page: String(p), per_page: perPageText });

  const links: string[] = [];
  if (nextPage !== null) links.push(`<${href(nextPage)}>; rel="next"`);
  if (prevPage !== null) links.push(`<${href(prevPage)}>; rel="prev"`);
  links.push(`<${href(1)}>; rel="first"`);
  if (counted) links.push(`<${href(totalPages)}>; rel="last"`);

  c.header('Link', links.join(', '));
  c.header('X-Next-Page', nextPage === null ? '' : String(nextPage));
  c.header('X-Page', String(page));
  c.header('X-Per-Page', perPageText);
  c.header('X-Prev-Page', prevPage === null ? '' : String(prevPage));
  if (counted) {
    c.header('X-Total', String(items.length));
    c.header('X-Total-Pages', String(totalPages));
  }
  return slice;
}

/**
 * Keyset paging ordered by id: only a `Link rel="next"` carrying `id_after` (ascending) or
 * `id_before` (descending), and only when more records follow (lib/gitlab/pagination/keyset/pager.rb).
 */
export function keysetPage<T extends { id: number }>(
  c: Context,
  sortedItems: readonly T[],
  perPage: number,
  direction: 'asc' | 'desc',
): T[] {
  const query = new URL(c.req.url).searchParams;
  const after = Number.parseInt(query.get('id_after') ?? '', 10);
  const before = Number.parseInt(query.get('id_before') ?? '', 10);
  const remaining = sortedItems.filter(
    (item) => (Number.isNaN(after) || item.id > after) && (Number.isNaN(before) || item.id < before),
  );
  const slice = remaining.slice(0, perPage);
  const last = slice.at(-1);
  if (remaining.length > perPage && last) {
    const cursor = direction === 'asc' ? { id_after: String(last.id), id_before: null } : { id_before: String(last.id), id_after: null };
    c.header('Link', `<${pageHref(c.req.url, { ...cursor, per_page: String(perPage) })}>; rel="next"`);
  }
  return slice;
}
