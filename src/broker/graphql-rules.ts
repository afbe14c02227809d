/**
 * The GraphQL rule (`/api/graphql`): queries are allowed, mutations (and subscriptions) refused (docs/security.md,
 * "Run policy"). Every document the request carries is parsed with the reference parser (the `graphql` package),
 * so comments, strings, fragments and several operations in one document cannot hide a mutation; a document that
 * does not parse is refused. GitLab reads `query` from the query string, a JSON body (an object, or an array of
 * them for a batch) or a form body, so all of them are checked.
 */
import { Kind, parse } from 'graphql';
import { ALLOW, quote, refuse, type Decision } from './decision.ts';
import { queryParams } from './paths.ts';

/** Enough for any real query; a longer document is refused rather than parsed at length. */
const MAX_TOKENS = 20_000;

const decoder = new TextDecoder('utf-8', { fatal: true });

type Documents = { documents: string[] } | { error: string };

function documentsOf(body: string | Uint8Array | null | undefined, query: string | URLSearchParams | undefined, contentType: string | undefined): Documents {
  const documents = [...queryParams(query).getAll('query')];
  let text = '';
  if (body !== null && body !== undefined) {
    try {
      text = typeof body === 'string' ? body : decoder.decode(body);
    } catch {
      return { error: 'the body is not valid UTF-8' };
    }
  }
  if (text.trim() === '') return { documents };
  const type = (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/x-www-form-urlencoded') return { documents: [...documents, ...new URLSearchParams(text).getAll('query')] };
  if (type !== '' && type !== 'application/json' && !type.endsWith('+json')) return { error: `a ${type} body cannot be checked; send JSON` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: 'the body is not valid JSON' };
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  for (const item of items) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return { error: 'each operation must be a JSON object' };
    const value: unknown = (item as Record<string, unknown>).query;
    if (typeof value !== 'string') return { error: 'an operation has no "query" text (persisted queries are not supported)' };
    documents.push(value);
  }
  return { documents };
}

/**
 * Decides a GraphQL request: `body` as sent (POST), `query` the URL's query string (GET, or extra parameters on a
 * POST), `contentType` the request's Content-Type.
 */
export function decideGraphql(
  body: string | Uint8Array | null | undefined,
  options: { query?: string | URLSearchParams; contentType?: string } = {},
): Decision {
  const found = documentsOf(body, options.query, options.contentType);
  if ('error' in found) return refuse('graphql.parse', `the GraphQL request could not be read: ${found.error}`);
  if (found.documents.length === 0) return refuse('graphql.parse', 'the GraphQL request carries no query document');
  for (const source of found.documents) {
    let definitions: ReturnType<typeof parse>['definitions'];
    try {
      definitions = parse(source, { noLocation: true, maxTokens: MAX_TOKENS }).definitions;
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n', 1)[0] ?? '' : 'it does not parse';
      return refuse('graphql.parse', `the GraphQL document could not be parsed (${quote(reason)}); send a valid query`);
    }
    for (const definition of definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) continue;
      if (definition.kind !== Kind.OPERATION_DEFINITION) return refuse('graphql.parse', 'a GraphQL request may hold only operations and fragments');
      if (definition.operation === 'query') continue;
      const name = definition.name?.value;
      return refuse(
        'graphql.mutation',
        `the GraphQL ${definition.operation}${name === undefined ? '' : ` ${quote(name)}`} refused: a run may only query through GraphQL; use the REST endpoints the run policy allows for writes`,
      );
    }
  }
  return ALLOW;
}
