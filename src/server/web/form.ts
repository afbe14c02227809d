import type { ForgelinkError } from '../../core/index.ts';

/** A posted field's text; a missing field, or a file where text was expected, reads as ''. */
export function fieldText(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** The form field a refusal names, so its message goes next to it; 'form' when it names none of them. */
export function errorField<F extends string>(fields: readonly F[], error: ForgelinkError): F | 'form' {
  return fields.find((name) => name === error.field) ?? 'form';
}
