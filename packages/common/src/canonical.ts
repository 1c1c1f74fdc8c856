import { ForgeError } from './errors.js';
import { utf8 } from './bytes.js';

/** A value that has exactly one canonical JSON form. */
export type CanonicalValue =
  | null
  | boolean
  | number
  | string
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue };

// In a `u` regular expression a well-formed surrogate pair is one code point, so this matches only lone halves.
const LONE_SURROGATE = /\p{Cs}/u;

function write(value: unknown, path: string, depth: number): string {
  if (depth > 64) throw new ForgeError('INVALID_ARGUMENT', `nesting too deep at ${path}`);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) {
        throw new ForgeError('INVALID_ARGUMENT', `only safe integers are canonical, got ${value} at ${path}`);
      }
      return String(value);
    case 'string':
      if (LONE_SURROGATE.test(value)) {
        throw new ForgeError('INVALID_ARGUMENT', `lone surrogate in string at ${path}`);
      }
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v, i) => write(v, `${path}[${i}]`, depth + 1)).join(',')}]`;
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new ForgeError('INVALID_ARGUMENT', `not a plain object at ${path}`);
      }
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${write(v, `${path}.${k}`, depth + 1)}`).join(',')}}`;
    }
    default:
      throw new ForgeError('INVALID_ARGUMENT', `${typeof value} is not canonical JSON at ${path}`);
  }
}

/**
 * Serialise a value to canonical JSON: object keys sorted by UTF-16 code units, no white space,
 * integers only (no floats, so there is one form per number), `undefined` members dropped.
 * This is the form that ForgeOne signs (manifests, trust roots, policies, configs).
 * @param value - plain data
 * @returns the canonical JSON text
 * @throws ForgeError `INVALID_ARGUMENT` for non-integers, non-plain objects, lone surrogates or nesting over 64
 * @example
 * ```ts
 * canonicalJson({ b: 1, a: [true, 'x'] }); // '{"a":[true,"x"],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  return write(value, '$', 0);
}

/**
 * Canonical JSON as UTF-8 bytes.
 * @param value - plain data
 * @returns the bytes to hash or sign
 * @throws ForgeError `INVALID_ARGUMENT` as {@link canonicalJson}
 */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}

/**
 * Render a field path (as validators report it) as `a.b[2].c`, the form ForgeOne errors name fields in.
 * @param path - path segments; numbers are array indexes
 * @returns the readable path, `$` for the root
 */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '$' : out;
}
