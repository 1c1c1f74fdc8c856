import { ForgeError, type ErrorCode } from './errors.js';

/** A successful {@link Result}. */
export interface Ok<T> {
  /** Discriminant: success. */
  readonly ok: true;
  /** The value. */
  readonly value: T;
}

/** A failed {@link Result}. */
export interface Err<E> {
  /** Discriminant: failure. */
  readonly ok: false;
  /** Why it failed. */
  readonly error: E;
}

/**
 * The outcome of an operation whose failure is expected (a bad signature, an expired package):
 * returned, not thrown, so hot paths do not pay for exceptions.
 *
 * @example
 * ```ts
 * const r = verifier.verify(bytes);
 * if (!r.ok) console.error(r.error.code);
 * ```
 */
export type Result<T, E = ForgeError> = Ok<T> | Err<E>;

/**
 * Wrap a value as a success.
 * @param value - the value
 * @returns `{ ok: true, value }`
 */
export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

/**
 * Wrap an error as a failure.
 * @param error - the error
 * @returns `{ ok: false, error }`
 */
export function err<E>(error: E): Err<E> {
  return { ok: false, error };
}

/**
 * Build a failure holding a new {@link ForgeError}.
 * @param code - the stable code
 * @param message - what went wrong
 * @param details - structured details
 * @returns a failed result
 */
export function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): Err<ForgeError> {
  return err(new ForgeError(code, message, details === undefined ? {} : { details }));
}

/**
 * Return the value of a success or throw the error of a failure.
 * @param result - a result
 * @returns the value
 * @throws the failure's error
 */
export function unwrap<T, E>(result: Result<T, E>): T {
  if (result.ok) return result.value;
  throw result.error;
}
