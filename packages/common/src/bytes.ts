import { ForgeError } from './errors.js';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Encode bytes as lowercase hex.
 * @param bytes - the bytes
 * @returns lowercase hex, two characters per byte
 */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!];
  return out;
}

/**
 * Decode hex (either case) into bytes.
 * @param hex - an even-length hex string
 * @param expectedLength - if given, the exact number of bytes required
 * @returns the bytes
 * @throws ForgeError `INVALID_ARGUMENT` for odd length, a non-hex character or a wrong length
 */
export function fromHex(hex: string, expectedLength?: number): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new ForgeError('INVALID_ARGUMENT', 'invalid hex string');
  }
  if (expectedLength !== undefined && hex.length !== expectedLength * 2) {
    throw new ForgeError('INVALID_ARGUMENT', `expected ${expectedLength} bytes of hex, got ${hex.length / 2}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Compare two byte arrays in time that depends only on their length.
 * @param a - first
 * @param b - second
 * @returns true when equal
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Concatenate byte arrays.
 * @param parts - the arrays
 * @returns one new array
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Encode a string as UTF-8.
 * @param text - the string
 * @returns UTF-8 bytes
 */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Decode UTF-8 strictly: invalid sequences are an error, never replaced.
 * @param bytes - UTF-8 bytes
 * @returns the string, or undefined when the bytes are not valid UTF-8
 */
export function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}
