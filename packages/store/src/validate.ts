// Argument checks shared by every Store implementation, so they all reject the same inputs with the same codes.
import { ForgeError, utf8 } from '@forgeone/common';
import type { LogRecordInput, StoreLimits } from './Store.js';

/** The shape of a log or namespace name (segments are checked separately). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$/;
// In a `u` regular expression a well-formed surrogate pair is one code point, so this matches only lone halves.
const LONE_SURROGATE = /\p{Cs}/u;

/** Key length limit: fixed by the contract, not configurable. */
export const MAX_KEY_BYTES = 1024;
/** Default largest log record: 16 MiB. */
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** Default largest value: 1 MiB. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
/** No configured limit may exceed this (a frame length is a u32, and a record is read into memory whole). */
export const HARD_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Whether a string is a valid log or namespace name.
 * @param name - a candidate
 * @returns true when `name` is 1–128 characters from `A-Z a-z 0-9 _ . / -`, starts with a letter or digit,
 *   and its `/`-separated segments are non-empty and neither `.` nor `..`
 * @example
 * ```ts
 * isValidStoreName('trace/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H'); // true
 * isValidStoreName('trace/../audit'); // false
 * ```
 */
export function isValidStoreName(name: unknown): name is string {
  if (typeof name !== 'string' || !NAME.test(name)) return false;
  return name.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

export function checkName(name: unknown, what: 'log' | 'namespace'): string {
  if (!isValidStoreName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.length > 140 ? `${name.slice(0, 140)}…` : name) : typeof name;
    throw new ForgeError('INVALID_ARGUMENT', `invalid ${what} name ${shown}: use 1-128 of A-Z a-z 0-9 _ . / -, starting with a letter or digit, no empty, "." or ".." segment`);
  }
  return name;
}

export function resolveLimits(options: { maxRecordBytes?: number; maxValueBytes?: number }): StoreLimits {
  const check = (what: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isSafeInteger(v) || v < 1 || v > HARD_MAX_BYTES) {
      throw new ForgeError('INVALID_ARGUMENT', `${what} must be an integer from 1 to ${HARD_MAX_BYTES}, got ${String(v)}`);
    }
    return v;
  };
  return Object.freeze({
    maxRecordBytes: check('maxRecordBytes', options.maxRecordBytes, DEFAULT_MAX_RECORD_BYTES),
    maxKeyBytes: MAX_KEY_BYTES,
    maxValueBytes: check('maxValueBytes', options.maxValueBytes, DEFAULT_MAX_VALUE_BYTES),
  });
}

/** Encode and check one record; always returns a fresh copy the caller cannot change afterwards. */
export function toRecordBytes(record: LogRecordInput, limits: StoreLimits): Uint8Array {
  let bytes: Uint8Array;
  if (typeof record === 'string') {
    if (LONE_SURROGATE.test(record)) throw new ForgeError('INVALID_ARGUMENT', 'a string record must be well-formed UTF-16 (lone surrogate found)');
    bytes = utf8(record);
  } else if (record instanceof Uint8Array) {
    bytes = record.slice();
  } else {
    throw new ForgeError('INVALID_ARGUMENT', `a record must be a Uint8Array or a string, got ${describe(record)}`);
  }
  if (bytes.length > limits.maxRecordBytes) {
    throw new ForgeError('LIMIT_EXCEEDED', `record of ${bytes.length} bytes exceeds the limit of ${limits.maxRecordBytes}`, {
      details: { size: bytes.length, limit: limits.maxRecordBytes },
    });
  }
  return bytes;
}

export function toRecordBatch(records: readonly LogRecordInput[], limits: StoreLimits): Uint8Array[] {
  if (!Array.isArray(records)) throw new ForgeError('INVALID_ARGUMENT', `appendBatch takes an array, got ${describe(records)}`);
  return records.map((r) => toRecordBytes(r, limits));
}

/** Check a key; returns its UTF-8 bytes. */
export function checkKey(key: unknown): Uint8Array {
  if (typeof key !== 'string') throw new ForgeError('INVALID_ARGUMENT', `a key must be a string, got ${describe(key)}`);
  if (key.length === 0) throw new ForgeError('INVALID_ARGUMENT', 'a key must not be empty');
  if (LONE_SURROGATE.test(key)) throw new ForgeError('INVALID_ARGUMENT', 'a key must be well-formed UTF-16 (lone surrogate found)');
  // A key of more than 1024 UTF-16 units has more than 1024 UTF-8 bytes: fail before encoding it.
  const bytes = key.length > MAX_KEY_BYTES ? undefined : utf8(key);
  if (bytes === undefined || bytes.length > MAX_KEY_BYTES) {
    const size = bytes?.length ?? utf8(key).length;
    throw new ForgeError('LIMIT_EXCEEDED', `key of ${size} UTF-8 bytes exceeds the limit of ${MAX_KEY_BYTES}`, {
      details: { size, limit: MAX_KEY_BYTES },
    });
  }
  return bytes;
}

/** Check a value; returns a fresh copy. */
export function checkValue(value: unknown, limits: StoreLimits): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ForgeError('INVALID_ARGUMENT', `a value must be a Uint8Array, got ${describe(value)}`);
  if (value.length > limits.maxValueBytes) {
    throw new ForgeError('LIMIT_EXCEEDED', `value of ${value.length} bytes exceeds the limit of ${limits.maxValueBytes}`, {
      details: { size: value.length, limit: limits.maxValueBytes },
    });
  }
  return value.slice();
}

export function checkPrefix(prefix: unknown): string {
  if (prefix === undefined) return '';
  if (typeof prefix !== 'string') throw new ForgeError('INVALID_ARGUMENT', `a prefix must be a string, got ${describe(prefix)}`);
  return prefix;
}

/** Check `read`/`tail` arguments: non-negative integers (`limit` may be Infinity). */
export function checkCount(what: string, value: unknown, allowInfinity = false): number {
  if (allowInfinity && value === Infinity) return Infinity;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ForgeError('INVALID_ARGUMENT', `${what} must be a non-negative integer, got ${typeof value === 'number' ? value : describe(value)}`);
  }
  return value;
}

export function closedError(what: string): ForgeError {
  // There is no dedicated "closed" code; IO_ERROR is the closest, but retrying cannot help, so say so.
  return new ForgeError('IO_ERROR', `${what} is closed`, { retryable: false });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value;
}

/** Sorted keys with a prefix, shared by both stores so they order keys the same way. */
export function sortedKeys(keys: Iterable<string>, prefix: string): string[] {
  const out: string[] = [];
  for (const k of keys) if (k.startsWith(prefix)) out.push(k);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
