import { ForgeError } from '@forgeone/common';
import { HostResultError, type HostErrorPayload } from './host.js';

/**
 * The property jco's `hybrid` import bindings look for on an imported function
 * (`Symbol.for('cabiLower')`): a factory that receives the canonical options of the lowering (the guest's
 * memory, its `realloc`, its string encoding) and returns the core function itself. jco then links that
 * function into the guest directly instead of its generated JS trampoline, so the host reads the arguments
 * from guest memory and writes the result there with no lifting in between.
 */
export const CABI_LOWER: unique symbol = Symbol.for('cabiLower') as never;

/** The canonical options jco passes to a {@link CABI_LOWER} factory. */
export interface CanonicalOptions {
  /** The guest's linear memory. */
  readonly memory?: WebAssembly.Memory;
  /** The guest's `realloc(old, oldSize, align, newSize) -> ptr`. */
  readonly realloc?: (old: number, oldSize: number, align: number, size: number) => number;
  /** `utf16` or `compact-utf16` when the lowering says so; absent for UTF-8. */
  readonly stringEncoding?: string;
  /** The post-return function (liftings only). */
  readonly postReturn?: unknown;
}

type BufferWithSlice = Buffer & { utf8Slice?: (start: number, end: number) => string };

/**
 * A guest's linear memory as the core-level host functions see it: typed views cached until the memory
 * grows (a grown memory detaches the old buffer, whose views then read as empty, so the bounds check that
 * every access makes also notices the growth), bounds-checked reads of strings, and the writes of a
 * `result`'s error case. Out-of-bounds pointers trap, as they do in jco's own trampolines.
 */
export class GuestMemory {
  readonly #memory: WebAssembly.Memory;
  readonly #realloc: CanonicalOptions['realloc'];
  /** Whether strings are UTF-16 (code units, little-endian) rather than UTF-8. */
  readonly utf16: boolean;
  /** Bytes of the memory (refreshed on growth). */
  u8: Uint8Array;
  /** The same bytes as a DataView. */
  view: DataView;
  #buf: BufferWithSlice;
  #utf16Decoder: TextDecoder | undefined;

  /**
   * @param options - the canonical options of the lowering
   * @throws ForgeError `WASM_LINK_ERROR` without a memory, or for the `compact-utf16` string encoding
   */
  constructor(options: CanonicalOptions) {
    if (options.memory === undefined) throw new ForgeError('WASM_LINK_ERROR', 'a lowered import that reads guest memory was given no memory');
    const enc = options.stringEncoding;
    if (enc !== undefined && enc !== 'utf8' && enc !== 'utf16') throw new ForgeError('WASM_LINK_ERROR', `string encoding ${String(enc)} is not supported by this host`);
    this.#memory = options.memory;
    this.#realloc = options.realloc;
    this.utf16 = enc === 'utf16';
    const b = this.#memory.buffer;
    this.u8 = new Uint8Array(b);
    this.view = new DataView(b);
    this.#buf = Buffer.from(b) as BufferWithSlice;
  }

  /**
   * Make sure `[at, at + n)` is inside the memory (re-reading the memory after a growth).
   * @param at - offset (unsigned)
   * @param n - length
   * @throws RangeError (a trap) when it is not
   */
  check(at: number, n: number): void {
    if (at + n > this.u8.length) {
      const b = this.#memory.buffer;
      this.u8 = new Uint8Array(b);
      this.view = new DataView(b);
      this.#buf = Buffer.from(b) as BufferWithSlice;
      if (at + n > this.u8.length) throw new RangeError(`guest memory access out of bounds: ${n} bytes at ${at}`);
    }
  }

  /**
   * Copy a string argument out of guest memory (the copy is the JS string; nothing is read from guest
   * memory afterwards). Invalid UTF-8 decodes to U+FFFD, as jco's trampolines do.
   * @param ptr - the string's pointer (i32 as passed)
   * @param len - its length in code units (bytes for UTF-8), i32 as passed
   * @returns the string
   * @throws RangeError (a trap) when it is out of bounds
   */
  string(ptr: number, len: number): string {
    const at = ptr >>> 0;
    const units = len >>> 0;
    if (this.utf16) {
      this.check(at, units * 2);
      this.#utf16Decoder ??= new TextDecoder('utf-16le');
      return this.#utf16Decoder.decode(this.u8.subarray(at, at + units * 2));
    }
    this.check(at, units);
    const buf = this.#buf;
    return buf.utf8Slice !== undefined ? buf.utf8Slice(at, at + units) : buf.toString('utf8', at, at + units);
  }

  /**
   * Lower a string result: allocate it with the guest's `realloc` and copy it in (cold paths: error cases).
   * @param s - the string
   * @returns `[ptr, len]` (len in code units)
   * @throws ForgeError `WASM_LINK_ERROR` when the lowering has no realloc
   */
  lowerString(s: string): [number, number] {
    if (s.length === 0) return [1, 0];
    const realloc = this.#realloc;
    if (realloc === undefined) throw new ForgeError('WASM_LINK_ERROR', 'a lowered import that returns a string was given no realloc');
    let bytes: Uint8Array;
    let align = 1;
    if (this.utf16) {
      bytes = new Uint8Array(s.length * 2);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < s.length; i++) dv.setUint16(i * 2, s.charCodeAt(i), true);
      align = 2;
    } else {
      bytes = new TextEncoder().encode(s);
    }
    const ptr = realloc(0, 0, align, bytes.length) >>> 0;
    this.check(ptr, bytes.length);
    this.u8.set(bytes, ptr);
    return [ptr, this.utf16 ? s.length : bytes.length];
  }

  /**
   * Write the `err` case of a `result<_, host-error>` or `result<T, host-error>` at `retptr`: tag 1, then the
   * record (two strings) at `payloadOffset`.
   * @param retptr - where the result lives
   * @param payloadOffset - offset of the payload in the result (4 after a u8 tag and 4-aligned payload, 8 for a
   *   u64 payload)
   * @param err - the host error
   */
  writeHostError(retptr: number, payloadOffset: number, err: HostErrorPayload): void {
    const at = retptr >>> 0;
    this.check(at, payloadOffset + 16);
    const [codePtr, codeLen] = this.lowerString(String(err.code));
    const [msgPtr, msgLen] = this.lowerString(String(err.message));
    // lowerString may have grown the memory: check again (it refreshes the views).
    this.check(at, payloadOffset + 16);
    const v = this.view;
    v.setUint8(at, 1);
    v.setInt32(at + payloadOffset, codePtr, true);
    v.setInt32(at + payloadOffset + 4, codeLen, true);
    v.setInt32(at + payloadOffset + 8, msgPtr, true);
    v.setInt32(at + payloadOffset + 12, msgLen, true);
  }

  /**
   * What a lowered function does with what its body threw: a {@link HostResultError} becomes the `err` case
   * of its `host-error` result; anything else (a trap) is thrown on.
   * @param cause - what was thrown
   * @param retptr - where the result lives
   * @param payloadOffset - see {@link GuestMemory.writeHostError}
   * @throws cause when it is not a HostResultError
   */
  failed(cause: unknown, retptr: number, payloadOffset: number): void {
    if (!(cause instanceof HostResultError)) throw cause;
    this.writeHostError(retptr, payloadOffset, cause.payload as HostErrorPayload);
  }
}

/**
 * Give a host function its core-level form for jco's hybrid bindings: `lower(options)` builds the function
 * that reads its arguments from, and writes its result into, the guest's memory.
 * @param fn - the JS-level host function (still used by guests whose bindings are JS)
 * @param lower - the factory
 * @returns `fn`
 */
export function withLowering<F extends (...args: never[]) => unknown>(fn: F, lower: (options: CanonicalOptions) => (...core: number[]) => void): F {
  Object.defineProperty(fn, CABI_LOWER, { value: lower, enumerable: false });
  return fn;
}
