import type { SyscallTable } from '@forgeone/common';
import type { Decision } from '@forgeone/trust';
import { VERDICTS, type CallArgsView, type CallRecorder, type RecordedVerdict } from './gate.js';

/** One recorded call, materialised from the ring (off the hot path). */
export interface CallRecord {
  /** Sequence number in the container, from 0. */
  readonly seq: number;
  /** Syscall name. */
  readonly syscall: string;
  /** Canonical arguments; only those the call carried. */
  readonly args: { readonly path?: string; readonly host?: string; readonly port?: number; readonly size?: number; readonly detail?: string };
  /** The recorded verdict. */
  readonly verdict: RecordedVerdict;
  /** The deciding rule (`node/rule`), or null (default action, or refused by the quarantine flag). */
  readonly rule: string | null;
  /** Whether the call was performed. */
  readonly allowed: boolean;
  /** 0 for success, an errno or error-variant number otherwise, -1 when refused. */
  readonly result: number;
  /** Start, ms since the epoch. */
  readonly start: number;
  /** Duration in ms. */
  readonly duration: number;
  /** Result bytes of a call whose result cannot be recomputed, or null. */
  readonly resultBytes: Uint8Array | null;
}

/** Fields of one call in {@link RawBlock.fields}, in this order (a stride of {@link RECORD_FIELDS} numbers). */
export const RecordField = Object.freeze({
  Seq: 0,
  Syscall: 1,
  Verdict: 2,
  Allowed: 3,
  Result: 4,
  Start: 5,
  Duration: 6,
  ArgOffset: 7,
  ResultOffset: 8,
  ResultLength: 9,
} as const);

/** Numbers per call in {@link RawBlock.fields}. */
export const RECORD_FIELDS = 10;

/**
 * A block of recorded calls as {@link RingRecorder} hands it over every `blockSize` calls: one Float64Array
 * of fixed fields per call ({@link RecordField}), the deciding rules, and one arena of argument and result
 * bytes. Plain typed arrays and strings, so it can be posted to another thread (the kernel seals blocks into
 * the execution DNA there). {@link decodeBlock} turns it into records.
 */
export interface RawBlock {
  /** Number of calls in the block. */
  readonly count: number;
  /** `count × RECORD_FIELDS` numbers. Result offset is -1 when a call has no result bytes, -2 when they were dropped. */
  readonly fields: Float64Array;
  /** The deciding rule of each call. */
  readonly rules: readonly (string | null)[];
  /** Argument and result bytes; a call's arguments run from its argument offset to its result offset (or the next call's argument offset). */
  readonly arena: Uint8Array;
}

/** Options of {@link RingRecorder}. */
export interface RingRecorderOptions {
  /** Records per block; a full block is handed to `onBlock`. Default 256. */
  readonly blockSize?: number;
  /** Receives each full block, and the partial one at {@link RingRecorder.flush}. */
  readonly onBlock?: (block: RawBlock) => void;
  /** Bytes of argument and result data a block may hold before it is flushed early. Default 256 KiB. */
  readonly arenaBytes?: number;
  /**
   * Hand over a partial block once its first call is this old (ms, by the calls' start times), so a guest
   * that stops calling — or is killed for CPU — loses at most this much of its record. Default: no limit.
   */
  readonly maxBlockAgeMs?: number;
  /**
   * Keep the ring in shared memory so another thread can salvage the calls not yet handed over when this
   * thread is killed ({@link salvageBlock} on {@link RingRecorder.shared}). Default false.
   */
  readonly shared?: boolean;
}

/** A ring in shared memory, readable by another thread after the recording thread died. */
export interface SharedRing {
  /** Fields of the pending calls ({@link RECORD_FIELDS} per call). */
  readonly fields: Float64Array;
  /** The arena. */
  readonly arena: Uint8Array;
  /** `[pending calls, arena bytes used]`, written after each call is complete. */
  readonly head: Int32Array;
}

/**
 * Read the calls a dead recorder had not handed over yet. Only safe once the recording thread has stopped.
 * The deciding rules are not in shared memory: salvaged calls have `rules` null (their verdicts are kept).
 * @param ring - {@link RingRecorder.shared} of the dead recorder
 * @returns the pending calls as a block, or null when there were none
 */
export function salvageBlock(ring: SharedRing): RawBlock | null {
  const n = ring.head[0]!;
  const used = ring.head[1]!;
  if (!(n > 0)) return null;
  return { count: n, fields: ring.fields.slice(0, n * RECORD_FIELDS), rules: new Array<string | null>(n).fill(null), arena: ring.arena.slice(0, used) };
}

const TAG_PATH = 1;
const TAG_HOST = 2;
const TAG_PORT = 3;
const TAG_SIZE = 4;
const TAG_DETAIL = 5;

/**
 * Decode a block into records (off the hot path).
 * @param block - a block from {@link RingRecorder}
 * @param syscalls - the container's syscall table, for names
 * @returns one record per call, in order
 */
export function decodeBlock(block: RawBlock, syscalls: SyscallTable): CallRecord[] {
  const out: CallRecord[] = [];
  const decoder = new TextDecoder();
  const f = block.fields;
  const view = new DataView(block.arena.buffer, block.arena.byteOffset, block.arena.byteLength);
  for (let i = 0; i < block.count; i++) {
    const base = i * RECORD_FIELDS;
    const args: { path?: string; host?: string; port?: number; size?: number; detail?: string } = {};
    let at = f[base + RecordField.ArgOffset]!;
    const resOff = f[base + RecordField.ResultOffset]!;
    const end = resOff >= 0 ? resOff : i + 1 < block.count ? f[base + RECORD_FIELDS + RecordField.ArgOffset]! : block.arena.length;
    while (at < end) {
      const tag = block.arena[at]!;
      if (tag === TAG_PORT || tag === TAG_SIZE) {
        const v = view.getFloat64(at + 1, true);
        if (tag === TAG_PORT) args.port = v;
        else args.size = v;
        at += 9;
      } else {
        const len = view.getUint32(at + 1, true);
        const s = decoder.decode(block.arena.subarray(at + 5, at + 5 + len));
        if (tag === TAG_PATH) args.path = s;
        else if (tag === TAG_HOST) args.host = s;
        else args.detail = s;
        at += 5 + len;
      }
    }
    out.push({
      seq: f[base + RecordField.Seq]!,
      syscall: syscalls.name(f[base + RecordField.Syscall]!),
      args,
      verdict: VERDICTS[f[base + RecordField.Verdict]!]!,
      rule: block.rules[i] ?? null,
      allowed: f[base + RecordField.Allowed] === 1,
      result: f[base + RecordField.Result]!,
      start: f[base + RecordField.Start]!,
      duration: f[base + RecordField.Duration]!,
      resultBytes: resOff >= 0 ? block.arena.slice(resOff, resOff + f[base + RecordField.ResultLength]!) : null,
    });
  }
  return out;
}

/**
 * A {@link CallRecorder} that writes fixed-size fields into typed arrays and variable bytes (arguments,
 * results) into one arena, so recording a call allocates nothing. Every `blockSize` calls (or when the
 * arena fills) copies of the used parts are handed to `onBlock` as a {@link RawBlock} and the ring is
 * reused (allocation per block, none per call). Decoding and hashing happen off the hot path — the observer seals
 * blocks into the execution DNA, on another thread when the guest runs in a worker.
 */
export class RingRecorder implements CallRecorder {
  readonly #blockSize: number;
  readonly #arenaBytes: number;
  readonly #onBlock: ((block: RawBlock) => void) | undefined;
  readonly #maxAge: number;
  #firstStart = 0;
  readonly #fields: Float64Array;
  readonly #decisions: (Decision | null)[];
  readonly #arena: Uint8Array;
  readonly #view: DataView;
  readonly #head: Int32Array | undefined;
  /** The ring in shared memory when created with `shared: true`, else undefined. */
  readonly shared: SharedRing | undefined;
  readonly #encoder = new TextEncoder();
  #n = 0;
  #used = 0;
  #total = 0;

  /** @param options - block size, block sink */
  constructor(options: RingRecorderOptions = {}) {
    this.#blockSize = options.blockSize ?? 256;
    this.#arenaBytes = options.arenaBytes ?? 256 * 1024;
    this.#onBlock = options.onBlock;
    this.#maxAge = options.maxBlockAgeMs ?? Infinity;
    this.#decisions = new Array<Decision | null>(this.#blockSize).fill(null);
    const shared = options.shared === true;
    const buffer = (bytes: number): ArrayBuffer | SharedArrayBuffer => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
    this.#fields = new Float64Array(buffer(this.#blockSize * RECORD_FIELDS * 8));
    this.#arena = new Uint8Array(buffer(this.#arenaBytes));
    this.#view = new DataView(this.#arena.buffer);
    this.#head = shared ? new Int32Array(new SharedArrayBuffer(8)) : undefined;
    this.shared = shared ? { fields: this.#fields, arena: this.#arena, head: this.#head! } : undefined;
  }

  /** Calls recorded so far (flushed or not). */
  get total(): number {
    return this.#total;
  }

  /** Calls recorded and not yet handed over. */
  get pending(): number {
    return this.#n;
  }

  /** @inheritdoc */
  record(
    seq: number,
    syscallId: number,
    args: Readonly<CallArgsView>,
    verdict: number,
    decision: Decision | null,
    allowed: boolean,
    result: number,
    start: number,
    duration: number,
    resultBytes: Uint8Array | null,
  ): void {
    const argBytes = this.#argBytes(args);
    const need = argBytes + (resultBytes === null ? 0 : resultBytes.length);
    if (this.#used + need > this.#arena.length && this.#n > 0) this.flush();
    const i = this.#n;
    const f = this.#fields;
    const base = i * RECORD_FIELDS;
    f[base] = seq;
    f[base + 1] = syscallId;
    f[base + 2] = verdict;
    f[base + 3] = allowed ? 1 : 0;
    f[base + 4] = result;
    f[base + 5] = start;
    f[base + 6] = duration;
    f[base + 7] = this.#used;
    this.#decisions[i] = decision;
    if (argBytes > 0 && this.#used + argBytes <= this.#arena.length) this.#writeArgs(args);
    if (resultBytes === null) {
      f[base + 8] = -1;
    } else if (this.#used + resultBytes.length <= this.#arena.length) {
      f[base + 8] = this.#used;
      f[base + 9] = resultBytes.length;
      this.#arena.set(resultBytes, this.#used);
      this.#used += resultBytes.length;
    } else {
      // A single result larger than the arena: keep the call, mark its bytes as dropped.
      f[base + 8] = -2;
    }
    this.#n = i + 1;
    this.#total++;
    const head = this.#head;
    if (head !== undefined) {
      // Written after the call is complete: a thread salvaging after a kill never sees half a call.
      head[1] = this.#used;
      head[0] = i + 1;
    }
    if (i === 0) this.#firstStart = start;
    if (this.#n === this.#blockSize || start - this.#firstStart >= this.#maxAge) this.flush();
  }

  /**
   * Hand over the calls not yet handed over (to `onBlock`, and as the return value).
   * @returns the block, or null when there was nothing to hand over
   */
  flush(): RawBlock | null {
    const n = this.#n;
    if (n === 0) return null;
    const rules: (string | null)[] = new Array<string | null>(n);
    for (let i = 0; i < n; i++) {
      rules[i] = this.#decisions[i]?.rule ?? null;
      this.#decisions[i] = null;
    }
    // Copies of the used parts; the ring's own arrays are reused (no per-block zeroing of the arena).
    const block: RawBlock = { count: n, fields: this.#fields.slice(0, n * RECORD_FIELDS), rules, arena: this.#arena.slice(0, this.#used) };
    this.#n = 0;
    this.#used = 0;
    if (this.#head !== undefined) this.#head[0] = 0;
    this.#onBlock?.(block);
    return block;
  }

  #argBytes(a: Readonly<CallArgsView>): number {
    let n = 0;
    if (a.path !== undefined) n += 5 + a.path.length * 3;
    if (a.host !== undefined) n += 5 + a.host.length * 3;
    if (a.port !== undefined) n += 9;
    if (a.size !== undefined) n += 9;
    if (a.detail !== undefined) n += 5 + a.detail.length * 3;
    return n;
  }

  #writeArgs(a: Readonly<CallArgsView>): void {
    if (a.path !== undefined) this.#writeString(TAG_PATH, a.path);
    if (a.host !== undefined) this.#writeString(TAG_HOST, a.host);
    if (a.port !== undefined) this.#writeNumber(TAG_PORT, a.port);
    if (a.size !== undefined) this.#writeNumber(TAG_SIZE, a.size);
    if (a.detail !== undefined) this.#writeString(TAG_DETAIL, a.detail);
  }

  #writeString(tag: number, s: string): void {
    const at = this.#used;
    const arena = this.#arena;
    arena[at] = tag;
    // ASCII fast path without allocation; anything else goes through the encoder.
    const len = s.length;
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      arena[at + 5 + i] = c;
    }
    let written = i;
    if (i < len) written = i + this.#encoder.encodeInto(s.slice(i), arena.subarray(at + 5 + i)).written;
    this.#view.setUint32(at + 1, written, true);
    this.#used = at + 5 + written;
  }

  #writeNumber(tag: number, v: number): void {
    const at = this.#used;
    this.#arena[at] = tag;
    this.#view.setFloat64(at + 1, v, true);
    this.#used = at + 9;
  }
}
