import type { FakeState } from '../state.ts';

/** What issues and merge requests have in common for listing (GitLab's IssuableFinder serves both lists). */
export type Issuable = {
  id: number;
  iid: number;
  title: string;
  description: string | null;
  state: string;
  authorId: number;
  labels: string[];
  createdAt: string;
  updatedAt: string;
};

/** The filters both `GET /projects/:id/issues` and `GET /projects/:id/merge_requests` take. */
export type IssuableFilters = {
  state: string;
  authorId: number | undefined;
  authorUsername: string | undefined;
  createdAfter: Date | undefined;
  createdBefore: Date | undefined;
  updatedAfter: Date | undefined;
  updatedBefore: Date | undefined;
  labels: string[] | undefined;
  iids: number[] | undefined;
  search: string | undefined;
};

/** A predicate for the common filters; an unknown `author_username` matches nothing, as in GitLab. */
export function issuableMatcher(state: FakeState, filters: IssuableFilters): (item: Issuable) => boolean {
  const authorByName =
    filters.authorUsername === undefined
      ? undefined
      : ([...state.users.values()].find((user) => user.username === filters.authorUsername)?.id ?? -1);
  const search = filters.search?.toLowerCase();
  return (item) => {
    if (filters.state !== 'all' && item.state !== filters.state) return false;
    if (filters.authorId !== undefined && item.authorId !== filters.authorId) return false;
    if (authorByName !== undefined && item.authorId !== authorByName) return false;
    if (filters.createdAfter && Date.parse(item.createdAt) < filters.createdAfter.getTime()) return false;
    if (filters.createdBefore && Date.parse(item.createdAt) > filters.createdBefore.getTime()) return false;
    if (filters.updatedAfter && Date.parse(item.updatedAt) < filters.updatedAfter.getTime()) return false;
    if (filters.updatedBefore && Date.parse(item.updatedAt) > filters.updatedBefore.getTime()) return false;
    if (filters.labels && filters.labels.length > 0 && !filters.labels.every((label) => item.labels.includes(label))) return false;
    if (filters.iids && !filters.iids.includes(item.iid)) return false;
    if (search && !`${item.title}\n${item.description ?? ''}`.toLowerCase().includes(search)) return false;
    return true;
  };
}

/** Sorts in place by `order_by` (`updated_at`, `title`, else `created_at`), ties by id. */
export function sortIssuables(items: Issuable[], orderBy: string, sort: 'asc' | 'desc'): void {
  const key = (item: Issuable): string => (orderBy === 'updated_at' ? item.updatedAt : orderBy === 'title' ? item.title : item.createdAt);
  const sign = sort === 'asc' ? 1 : -1;
  items.sort((a, b) => sign * (key(a).localeCompare(key(b)) || a.id - b.id));
}
