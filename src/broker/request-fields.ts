/**
 * The parameters of a REST request as GitLab's API (Grape on Rack) sees them: the query string merged with a JSON
 * or form-encoded body. A rule that depends on a field reads every value the field has in either place, so a
 * second copy cannot slip past it.
 */
import { paramValues } from './paths.ts';

export type RequestBody = string | Uint8Array | null | undefined;

/** The values of each field: strings, or `invalid` where a JSON value was an object, array or null. */
export type Fields = { values(name: string): string[] | 'invalid' } | { error: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
}

export function bodyText(body: RequestBody): string | null {
  if (body === null || body === undefined) return '';
  if (typeof body === 'string') return body;
  try {
    return decoder.decode(body);
  } catch {
    return null;
  }
}

/**
 * The first key that appears twice at the top level of a (valid) JSON object text, or null. `JSON.parse` keeps the
 * last copy silently; a parser that kept the first would see another value, so a duplicate is refused instead.
 */
export function duplicateTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index];
    if (char === '"') {
      let end = index + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const literal = text.slice(index, end + 1);
      index = end;
      if (depth !== 1) continue;
      let next = end + 1;
      while (/[ \t\r\n]/.test(text[next] ?? '')) next += 1;
      if (text[next] !== ':') continue;
      const key = JSON.parse(literal) as string;
      if (seen.has(key)) return key;
      seen.add(key);
    } else if (char === '{' || char === '[') depth += 1;
    else if (char === '}' || char === ']') depth -= 1;
  }
  return null;
}

export function requestFields(query: string | URLSearchParams | undefined, body: RequestBody, contentType: string | undefined): Fields {
  const text = bodyText(body);
  if (text === null) return { error: 'the body is not valid UTF-8' };
  const type = mediaType(contentType);
  let json: Record<string, unknown> | null = null;
  let form: string | null = null;
  if (text.trim() !== '') {
    if (type === 'application/json' || type.endsWith('+json') || (type === '' && /^\s*\{/.test(text))) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return { error: 'the body is not valid JSON' };
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { error: 'the JSON body is not an object' };
      const duplicate = duplicateTopLevelKey(text);
      if (duplicate !== null) return { error: `the JSON body names the field "${duplicate.slice(0, 60)}" twice` };
      json = parsed as Record<string, unknown>;
    } else if (type === 'application/x-www-form-urlencoded' || type === '') {
      form = text;
    } else {
      return { error: `a ${type} body cannot be checked; send the fields as JSON or form-encoded` };
    }
  }
  return {
    values(name: string): string[] | 'invalid' {
      const found = [...paramValues(query, name), ...(form === null ? [] : paramValues(form, name))];
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

export type Headers = Readonly<Record<string, string | readonly string[] | undefined>> | globalThis.Headers;

const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/**
 * Whether a POST asks to be treated as another method: Rails's Rack::MethodOverride turns a POST with `_method`
 * in its form (or multipart) body, or an `X-HTTP-Method-Override` header, into that method before the API sees
 * it. Such a request would be judged as the wrong method, so it is refused.
 */
export function asksForMethodOverride(query: string | URLSearchParams | undefined, body: RequestBody, contentType: string | undefined, headers: Headers | undefined): boolean {
  if (headers !== undefined) {
    for (const name of OVERRIDE_HEADERS) {
      const value = headers instanceof globalThis.Headers ? headers.get(name) : (headers[name] ?? headers[name.toUpperCase()]);
      if (value !== undefined && value !== null) return true;
    }
  }
  if (paramValues(query, '_method').length > 0) return true;
  const type = mediaType(contentType);
  if (type === 'application/json' || type.endsWith('+json')) return false;
  const text = bodyText(body);
  if (text === null) return false;
  if (type.startsWith('multipart/')) return text.includes('_method');
  return paramValues(text, '_method').length > 0;
}
