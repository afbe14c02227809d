import type { Context } from 'hono';
import type { z } from 'zod';
import { InputError } from '../core/index.ts';

function firstIssue(error: z.ZodError): InputError {
  const issue = error.issues[0];
  const field = issue?.path.join('.') || undefined;
  const what = field === undefined ? 'The request' : `"${field}"`;
  const message =
    issue?.code === 'invalid_type' && issue.input === undefined
      ? `${what} is required.`
      : `${what}: ${issue?.message ?? 'invalid'}.`;
  return new InputError('invalid_input', message, field === undefined ? {} : { field });
}

/** Parses a JSON body with a zod schema; a bad body is an InputError naming the field. */
export async function parseBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw new InputError('invalid_json', 'The request body must be a JSON object (Content-Type: application/json).');
  }
  const result = schema.safeParse(json);
  if (!result.success) throw firstIssue(result.error);
  return result.data;
}

export function parseQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const result = schema.safeParse(c.req.query());
  if (!result.success) throw firstIssue(result.error);
  return result.data;
}
