import type { Context } from 'hono';

/**
 * Request parameters as Grape sees them: the query string merged with a JSON, form or multipart body
 * (body wins). Values stay raw; the readers below coerce them and collect Grape's error texts.
 */
export type RawParams = Record<string, unknown>;

export async function readParams(c: Context): Promise<RawParams | Response> {
  const params: RawParams = {};
  const query = new URL(c.req.url).searchParams;
  for (const key of new Set(query.keys())) {
    const values = query.getAll(key);
    params[key.replace(/\[\]$/, '')] = key.endsWith('[]') ? values : values.at(-1);
  }
  if (c.req.method === 'GET' || c.req.method === 'HEAD') return params;
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  if (type.startsWith('application/json')) {
    const text = await c.req.text();
    if (text.trim() === '') return params;
    let body: unknown;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      // Grape's JSON parser error.
      return c.json({ error: 'The provided content-type \'application/json\' is not supported.' }, 400);
    }
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) Object.assign(params, body);
    return params;
  }
  if (type.startsWith('application/x-www-form-urlencoded') || type.startsWith('multipart/form-data')) {
    const body = await c.req.parseBody({ all: true });
    for (const [key, value] of Object.entries(body)) {
      params[key.replace(/\[\]$/, '')] = Array.isArray(value) ? value.filter((v) => typeof v === 'string') : typeof value === 'string' ? value : undefined;
    }
  }
  return params;
}

/** Collects Grape validation errors; `response()` answers them joined by ", " as Grape does. */
export class ParamReader {
  readonly errors: string[] = [];
  readonly #params: RawParams;

  constructor(params: RawParams) {
    this.#params = params;
  }

  #scalar(name: string): string | undefined {
    const value = this.#params[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    this.errors.push(`${name} is invalid`);
    return undefined;
  }

  /** `requires :name, type: String`: absent is "name is missing"; an empty string passes Grape. */
  requiredString(name: string): string {
    if (this.#params[name] === undefined || this.#params[name] === null) {
      this.errors.push(`${name} is missing`);
      return '';
    }
    return this.#scalar(name) ?? '';
  }

  optionalString(name: string): string | undefined {
    return this.#scalar(name);
  }

  /** Grape's Boolean: true/false, 1/0, yes/no, t/f, on/off in any case; anything else is invalid. */
  optionalBoolean(name: string): boolean | undefined {
    const raw = this.#scalar(name);
    if (raw === undefined || raw === '') return undefined;
    const lowered = raw.toLowerCase();
    if (['true', '1', 'yes', 't', 'y', 'on'].includes(lowered)) return true;
    if (['false', '0', 'no', 'f', 'n', 'off'].includes(lowered)) return false;
    this.errors.push(`${name} is invalid`);
    return undefined;
  }

  optionalInteger(name: string): number | undefined {
    const raw = this.#scalar(name);
    if (raw === undefined || raw === '') return undefined;
    if (!/^-?\d+$/.test(raw.trim())) {
      this.errors.push(`${name} is invalid`);
      return undefined;
    }
    return Number.parseInt(raw, 10);
  }

  optionalIntegers(name: string): number[] | undefined {
    const raw = this.#params[name];
    if (raw === undefined) return undefined;
    const list = Array.isArray(raw) ? raw : [raw];
    const result: number[] = [];
    for (const item of list) {
      const text = String(item).trim();
      if (!/^\d+$/.test(text)) {
        this.errors.push(`${name} is invalid`);
        return undefined;
      }
      result.push(Number.parseInt(text, 10));
    }
    return result;
  }

  /** `type: DateTime`: anything Ruby's DateTime.parse takes; here, what Date.parse takes. */
  optionalTime(name: string): Date | undefined {
    const raw = this.#scalar(name);
    if (raw === undefined || raw === '') return undefined;
    const time = new Date(raw);
    if (Number.isNaN(time.getTime())) {
      this.errors.push(`${name} is invalid`);
      return undefined;
    }
    return time;
  }

  /** `values: [...]` with a default. */
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    return this.optionalOneOf(name, allowed) ?? fallback;
  }

  optionalOneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const raw = this.#scalar(name);
    if (raw === undefined) return undefined;
    const found = allowed.find((v) => v === raw);
    if (found === undefined) this.errors.push(`${name} does not have a valid value`);
    return found;
  }

  /** Validations::Types::CommaSeparatedToArray: `a,b` or `["a","b"]`, trimmed, blanks dropped. */
  optionalLabels(name: string): string[] | undefined {
    const raw = this.#params[name];
    if (raw === undefined || raw === null) return undefined;
    const list = Array.isArray(raw) ? raw : [raw];
    const labels: string[] = [];
    for (const item of list) {
      if (typeof item !== 'string') {
        this.errors.push(`${name} is invalid`);
        return undefined;
      }
      labels.push(...item.split(',').map((l) => l.trim()).filter((l) => l !== ''));
    }
    return labels;
  }

  response(c: Context): Response | null {
    return this.errors.length === 0 ? null : c.json({ error: this.errors.join(', ') }, 400);
  }
}

/** The string-valued parameters only (the last value of a repeated one), as Rails' params[:name].to_s sees them. */
export function stringParams(params: RawParams): Record<string, string | undefined> {
  const strings: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(params)) {
    if (typeof value === 'string') strings[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') strings[key] = String(value);
    else if (Array.isArray(value)) {
      const last: unknown = value.at(-1);
      if (typeof last === 'string') strings[key] = last;
    }
  }
  return strings;
}
