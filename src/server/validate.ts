import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { InputError } from '../core/index.ts';

/** A body that is not JSON where the API reads JSON: HTTP 415 (errors.ts). */
export class MediaTypeError extends InputError {}

type Source = 'body' | 'query';

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

const EXPECTED: Record<string, string> = {
  array: 'must be a list',
  string: 'must be a string',
  number: 'must be a number',
  int: 'must be a whole number',
  bigint: 'must be a whole number',
  boolean: 'must be true or false',
  object: 'must be a JSON object',
};

function plural(count: number | bigint, one: string): string {
  return `${count} ${one}${Number(count) === 1 ? '' : 's'}`;
}

/** What is wrong with the value, as the rest of a sentence that starts with the field's name. */
function describe(issue: z.core.$ZodIssue, input: unknown, source: Source): string {
  switch (issue.code) {
    case 'invalid_type': {
      if (valueAt(input, issue.path) === undefined) return 'is required';
      // Query parameters arrive as text; every number among them is a count or a position.
      if (source === 'query' && (issue.expected === 'number' || issue.expected === 'int')) return 'must be a whole number';
      return EXPECTED[issue.expected] ?? `must be of type ${issue.expected}`;
    }
    case 'too_small': {
      const { minimum, inclusive } = issue;
      if (issue.origin === 'array' || issue.origin === 'set') return Number(minimum) <= 1 ? 'must not be empty' : `must have at least ${plural(minimum, 'item')}`;
      if (issue.origin === 'string') return Number(minimum) <= 1 ? 'must not be empty' : `must be at least ${plural(minimum, 'character')} long`;
      return inclusive === false ? `must be more than ${minimum}` : `must be at least ${minimum}`;
    }
    case 'too_big': {
      const { maximum, inclusive } = issue;
      if (issue.origin === 'array' || issue.origin === 'set') return `must have at most ${plural(maximum, 'item')}`;
      if (issue.origin === 'string') return `must be at most ${plural(maximum, 'character')} long`;
      return inclusive === false ? `must be less than ${maximum}` : `must be at most ${maximum}`;
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'unrecognized_keys':
      return `has unknown ${issue.keys.length === 1 ? 'field' : 'fields'} ${issue.keys.map((key) => `"${key}"`).join(', ')}`;
    default:
      return `is not valid (${issue.message})`;
  }
}

/**
 * The first problem, as an InputError naming the field: nested object keys joined with dots (`rotation.enabled`);
 * an item of a list is named by the list's field, and by its position in the message (`"command[0]"`).
 */
function firstIssue(error: z.ZodError, input: unknown, source: Source): InputError {
  const issue = error.issues[0];
  if (issue === undefined) return new InputError('invalid_input', 'The request is not valid.');
  const listAt = issue.path.findIndex((key) => typeof key === 'number');
  const keys = listAt < 0 ? issue.path : issue.path.slice(0, listAt);
  const field = keys.length === 0 ? undefined : keys.map(String).join('.');
  const where = issue.path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('');
  const subject =
    where === '' ? (source === 'body' ? 'The request body' : 'The query') : `"${where}"${source === 'query' ? ' (query parameter)' : ''}`;
  return new InputError('invalid_input', `${subject} ${describe(issue, input, source)}.`, field === undefined ? {} : { field });
}

const JSON_MEDIA_TYPE = /^application\/json$/i;

/** True when the request says its body is JSON (`application/json`, parameters such as charset allowed). */
function declaresJson(c: Context): boolean {
  const type = c.req.header('content-type');
  return type !== undefined && JSON_MEDIA_TYPE.test(type.split(';')[0]?.trim() ?? '');
}

function notJson(c: Context): MediaTypeError {
  const type = c.req.header('content-type');
  return new MediaTypeError(
    'unsupported_media_type',
    `The request body must be JSON sent with "Content-Type: application/json"${type === undefined ? ' (this request named no content type)' : ` (this request said "${type}")`}.`,
  );
}

/**
 * Refuses (415) a POST, PUT or PATCH whose body is not declared as JSON, whether or not its route reads a body:
 * text sent as `text/plain` or a form is never quietly taken for JSON. A request without a body passes.
 */
export function requireJsonBodies(): MiddlewareHandler {
  return async (c, next) => {
    if (['POST', 'PUT', 'PATCH'].includes(c.req.method) && !declaresJson(c)) {
      const length = c.req.header('content-length');
      const hasBody =
        c.req.header('content-type') !== undefined ||
        c.req.header('transfer-encoding') !== undefined ||
        (length !== undefined && length.trim() !== '0');
      if (hasBody) throw notJson(c);
    }
    await next();
  };
}

/** Parses a JSON body with a zod schema; a bad body is an InputError naming the field, a non-JSON one a 415. */
export async function parseBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  if (!declaresJson(c)) throw notJson(c);
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw new InputError('invalid_json', 'The request body is not valid JSON: send a JSON object.');
  }
  const result = schema.safeParse(json);
  if (!result.success) throw firstIssue(result.error, json, 'body');
  return result.data;
}

export function parseQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const query = c.req.query();
  const result = schema.safeParse(query);
  if (!result.success) throw firstIssue(result.error, query, 'query');
  return result.data;
}
