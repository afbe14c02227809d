import type { ContentfulStatusCode } from 'hono/utils/http-status';
import {
  AuthenticationError,
  ConflictError,
  ForgelinkError,
  InputError,
  NotAllowedError,
  NotFoundError,
  UpstreamError,
  VaultError,
} from '../core/index.ts';
import { MediaTypeError } from './validate.ts';

export type ErrorBody = { error: { code: string; message: string; field?: string } };

/** The one place typed errors become HTTP statuses (docs/contract.md, "Errors"). */
export function toHttpError(error: unknown): { status: ContentfulStatusCode; body: ErrorBody } {
  if (!(error instanceof ForgelinkError)) {
    return { status: 500, body: { error: { code: 'internal', message: 'Something went wrong inside forgelink; the server log has details.' } } };
  }
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  if (error.field !== undefined) body.error.field = error.field;
  return { status: statusOf(error), body };
}

function statusOf(error: ForgelinkError): ContentfulStatusCode {
  if (error instanceof MediaTypeError) return 415;
  if (error instanceof InputError) return 400;
  if (error instanceof AuthenticationError) return 401;
  if (error instanceof NotAllowedError) return 403;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  if (error instanceof UpstreamError) {
    switch (error.reason) {
      case 'rate_limited':
        return 503;
      case 'token_expired':
      case 'token_revoked':
      case 'token_invalid':
      case 'insufficient_scope':
      case 'forbidden':
        // The stored token no longer works: the caller can act (reconnect), so it is not a 5xx.
        return 409;
      default:
        return 502;
    }
  }
  if (error instanceof VaultError) return 500;
  return 500;
}
