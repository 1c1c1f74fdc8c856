/**
 * How errors become responses: a stable code, its HTTP status, and nothing internal.
 *
 * @packageDocumentation
 */
import { ErrorCodes, ForgeError, formatFieldPath, isForgeError } from '@forgeone/common';
import type { z } from 'zod';

/** The JSON body of an error response. */
export interface ErrorResponseBody {
  /** The error. */
  readonly error: {
    /** A stable code from `ErrorCodes`. */
    readonly code: string;
    /** What went wrong, for people. */
    readonly message: string;
    /** Whether the same request may succeed later. */
    readonly retryable: boolean;
    /** Structured details, when there are some. */
    readonly details?: Readonly<Record<string, unknown>>;
  };
}

interface FrameworkError {
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly message?: unknown;
}

/**
 * Turn anything thrown while serving a request into a ForgeError with a code a client can act on. Errors of
 * the HTTP framework (body too large, malformed JSON, wrong content type) get their own codes; anything
 * unknown becomes `INTERNAL` with a message that reveals nothing of the server.
 * @param e - anything thrown
 * @param limits - the body limit that applied, for the message of a too-large body
 * @returns the error to answer with, and whether it was unexpected (to be logged)
 */
export function toApiError(e: unknown, limits: { readonly bodyLimit?: number } = {}): { readonly error: ForgeError; readonly unexpected: boolean } {
  if (isForgeError(e)) {
    if (e.code === 'INTERNAL') return { error: new ForgeError('INTERNAL', 'internal error (see the server log)'), unexpected: true };
    return { error: e, unexpected: false };
  }
  const f = (typeof e === 'object' && e !== null ? e : {}) as FrameworkError;
  const code = typeof f.code === 'string' ? f.code : '';
  const status = typeof f.statusCode === 'number' ? f.statusCode : 500;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { error: new ForgeError('LIMIT_EXCEEDED', `the request body is larger than ${limits.bodyLimit ?? 'the limit of'} bytes`, { details: { field: 'body', ...(limits.bodyLimit === undefined ? {} : { limit: limits.bodyLimit }) } }), unexpected: false };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { error: new ForgeError('UNSUPPORTED_MEDIA_TYPE', 'this endpoint does not take a body of that content type', { details: { field: 'content-type' } }), unexpected: false };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { error: new ForgeError('INVALID_ARGUMENT', 'the JSON body is empty', { details: { field: 'body' } }), unexpected: false };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { error: new ForgeError('INVALID_ARGUMENT', 'the content-length does not match the body', { details: { field: 'content-length' } }), unexpected: false };
    default:
      break;
  }
  if (status >= 400 && status < 500) {
    const message = e instanceof SyntaxError || code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'the body is not valid JSON' : typeof f.message === 'string' ? f.message.slice(0, 200) : 'bad request';
    return { error: new ForgeError(status === 413 ? 'LIMIT_EXCEEDED' : 'INVALID_ARGUMENT', message, { details: { field: 'body' } }), unexpected: false };
  }
  return { error: new ForgeError('INTERNAL', 'internal error (see the server log)'), unexpected: true };
}

/**
 * The response body of an error.
 * @param error - the error
 * @returns `{ error: { code, message, retryable, details? } }`
 */
export function errorBody(error: ForgeError): ErrorResponseBody {
  return { error: error.toJSON() };
}

/**
 * The HTTP status of an error's code.
 * @param error - the error
 * @returns the status from `ErrorCodes`
 */
export function statusOf(error: ForgeError): number {
  return ErrorCodes[error.code].status;
}

/**
 * A validation failure as an `INVALID_ARGUMENT` error naming the first bad field.
 * @param where - `body`, `query` or `path`
 * @param issues - zod's issues
 * @returns the error, its details listing up to 10 issues
 */
export function validationError(where: 'body' | 'query' | 'path', issues: readonly z.core.$ZodIssue[]): ForgeError {
  const first = issues[0];
  const field = first === undefined ? where : qualified(where, first.path);
  return new ForgeError('INVALID_ARGUMENT', `${field}: ${first?.message ?? 'invalid'}`, {
    details: { field, issues: issues.slice(0, 10).map((i) => ({ path: qualified(where, i.path), message: i.message })) },
  });
}

function qualified(where: string, path: readonly PropertyKey[]): string {
  if (path.length === 0) return where;
  const p = formatFieldPath(path);
  return p.startsWith('[') ? `${where}${p}` : `${where}.${p}`;
}
