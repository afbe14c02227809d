/**
 * The parameters of a REST request as GitLab's API (Grape on Rack) sees them: the query string merged with a JSON
 * or form-encoded body. A rule that depends on a field reads every value the field has in either place, so a
 * second copy cannot slip past it.
 */
import { queryParams } from './paths.ts';

export type RequestBody = string | Uint8Array | null | undefined;

/** The values of each field: strings, or `invalid` where a JSON value was an object, array or null. */
export type Fields = { values(name: string): string[] | 'invalid' } | { error: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
}

export function requestFields(query: string | URLSearchParams | undefined, body: RequestBody, contentType: string | undefined): Fields {
  const params = queryParams(query);
  let text = '';
  if (body !== null && body !== undefined) {
    try {
      text = typeof body === 'string' ? body : decoder.decode(body);
    } catch {
      return { error: 'the body is not valid UTF-8' };
    }
  }
  const type = mediaType(contentType);
  let json: Record<string, unknown> | null = null;
  let form: URLSearchParams | null = null;
  if (text.trim() !== '') {
    if (type === 'application/json' || type.endsWith('+json') || (type === '' && /^\s*\{/.test(text))) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return { error: 'the body is not valid JSON' };
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { error: 'the JSON body is not an object' };
      json = parsed as Record<string, unknown>;
    } else if (type === 'application/x-www-form-urlencoded' || type === '') {
      form = new URLSearchParams(text);
    } else {
      return { error: `a ${type} body cannot be checked; send the fields as JSON or form-encoded` };
    }
  }
  return {
    values(name: string): string[] | 'invalid' {
      const found = [...params.getAll(name), ...(form?.getAll(name) ?? [])];
      if (json !== null && Object.hasOwn(json, name)) {
        const value = json[name];
        if (typeof value === 'string') found.push(value);
        else if (typeof value === 'number' || typeof value === 'boolean') found.push(String(value));
        else return 'invalid';
      }
      return found;
    },
  };
}

/** Grape's Boolean coercion, read conservatively: only a clear "false" is false. */
export function isFalse(value: string): boolean {
  return /^(false|0|no|f|n|off)?$/i.test(value.trim());
}
