import { ForgeError } from '@forgeone/common';

/**
 * A bounds-checked cursor over WebAssembly binary bytes. Every read past the end or malformed LEB128 throws a
 * ForgeError `WASM_INVALID` naming the offset, never a RangeError.
 */
export class WasmReader {
  /** The bytes read. */
  readonly bytes: Uint8Array;
  /** The current offset. */
  pos: number;
  /** The offset reads must not pass. */
  end: number;

  /**
   * @param bytes - the bytes
   * @param pos - the first offset to read
   * @param end - the offset reads must not pass; default the length
   */
  constructor(bytes: Uint8Array, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }

  /**
   * Throw the reader's malformed-input error.
   * @param what - what was wrong
   * @returns never
   * @throws ForgeError `WASM_INVALID`
   */
  fail(what: string): never {
    throw new ForgeError('WASM_INVALID', `malformed WebAssembly at offset ${this.pos}: ${what}`, { details: { offset: this.pos } });
  }

  /**
   * One byte.
   * @returns the byte
   * @throws ForgeError `WASM_INVALID` at the end
   */
  u8(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.bytes[this.pos++]!;
  }

  /**
   * An unsigned LEB128 of at most 32 bits.
   * @returns the value
   * @throws ForgeError `WASM_INVALID` when malformed or too long
   */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.u8();
      if (shift === 28 && (b & 0x70) !== 0) this.fail('u32 LEB128 overflow');
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 28) this.fail('u32 LEB128 too long');
    }
  }

  /**
   * An unsigned LEB128 of at most 64 bits, as a number (exact below 2^53).
   * @returns the value
   * @throws ForgeError `WASM_INVALID` when malformed or too long
   */
  u64(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.u8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) this.fail('u64 LEB128 too long');
    }
  }

  /**
   * Skip any LEB128 (signed or unsigned) of at most `maxBytes` bytes.
   * @param maxBytes - 5 for 32-bit values, 10 for 64-bit
   * @throws ForgeError `WASM_INVALID` when too long
   */
  skipLeb(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) if ((this.u8() & 0x80) === 0) return;
    this.fail('LEB128 too long');
  }

  /**
   * Skip `n` bytes.
   * @param n - how many
   * @throws ForgeError `WASM_INVALID` past the end
   */
  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end) this.fail('unexpected end');
    this.pos += n;
  }

  /**
   * A length-prefixed UTF-8 name.
   * @returns the name
   * @throws ForgeError `WASM_INVALID` when truncated or not UTF-8
   */
  name(): string {
    const n = this.u32();
    const start = this.pos;
    this.skip(n);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(start, start + n));
    } catch {
      this.pos = start;
      return this.fail('name is not UTF-8');
    }
  }
}

/**
 * Encode an unsigned LEB128.
 * @param value - a non-negative integer below 2^53
 * @returns the bytes
 */
export function encodeU(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/**
 * Encode a name (length-prefixed UTF-8).
 * @param name - the name
 * @returns the bytes
 */
export function encodeName(name: string): number[] {
  const bytes = new TextEncoder().encode(name);
  return [...encodeU(bytes.length), ...bytes];
}
