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

/** Options of {@link RingRecorder}. */
export interface RingRecorderOptions {
  /** Syscall names for materialised records. */
  readonly syscalls: SyscallTable;
  /** Records per block; a full block is handed to `onBlock`. Default 256. */
  readonly blockSize?: number;
  /** Receives each full block, and the partial one at {@link RingRecorder.flush}. */
  readonly onBlock?: (records: readonly CallRecord[]) => void;
  /** Bytes of argument and result data a block may hold before it is flushed early. Default 1 MiB. */
  readonly arenaBytes?: number;
}

const TAG_PATH = 1;
const TAG_HOST = 2;
const TAG_PORT = 3;
const TAG_SIZE = 4;
const TAG_DETAIL = 5;

/**
 * A {@link CallRecorder} that writes fixed-size fields into typed arrays and variable bytes (arguments,
 * results) into one arena, so recording a call allocates nothing. Every `blockSize` calls (or when the
 * arena fills) the block is materialised into {@link CallRecord}s and handed to `onBlock` — the observer
 * seals blocks into the execution DNA there.
 */
export class RingRecorder implements CallRecorder {
  readonly #syscalls: SyscallTable;
  readonly #blockSize: number;
  readonly #onBlock: ((records: readonly CallRecord[]) => void) | undefined;
  readonly #seq: Int32Array;
  readonly #id: Int32Array;
  readonly #verdict: Uint8Array;
  readonly #allowed: Uint8Array;
  readonly #result: Int32Array;
  readonly #start: Float64Array;
  readonly #duration: Float64Array;
  readonly #argOff: Uint32Array;
  readonly #resOff: Int32Array;
  readonly #resLen: Uint32Array;
  readonly #decisions: (Decision | null)[];
  readonly #arena: Uint8Array;
  readonly #view: DataView;
  readonly #encoder = new TextEncoder();
  #n = 0;
  #used = 0;
  #total = 0;

  /** @param options - syscall names, block size, block sink */
  constructor(options: RingRecorderOptions) {
    const n = options.blockSize ?? 256;
    this.#syscalls = options.syscalls;
    this.#blockSize = n;
    this.#onBlock = options.onBlock;
    this.#seq = new Int32Array(n);
    this.#id = new Int32Array(n);
    this.#verdict = new Uint8Array(n);
    this.#allowed = new Uint8Array(n);
    this.#result = new Int32Array(n);
    this.#start = new Float64Array(n);
    this.#duration = new Float64Array(n);
    this.#argOff = new Uint32Array(n + 1);
    this.#resOff = new Int32Array(n);
    this.#resLen = new Uint32Array(n);
    this.#decisions = new Array<Decision | null>(n).fill(null);
    this.#arena = new Uint8Array(options.arenaBytes ?? 1 << 20);
    this.#view = new DataView(this.#arena.buffer);
  }

  /** Calls recorded so far (flushed or not). */
  get total(): number {
    return this.#total;
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
    const need = this.#argBytes(args) + (resultBytes === null ? 0 : resultBytes.length);
    if (this.#used + need > this.#arena.length && this.#n > 0) this.flush();
    const i = this.#n;
    this.#seq[i] = seq;
    this.#id[i] = syscallId;
    this.#verdict[i] = verdict;
    this.#allowed[i] = allowed ? 1 : 0;
    this.#result[i] = result;
    this.#start[i] = start;
    this.#duration[i] = duration;
    this.#decisions[i] = decision;
    this.#argOff[i] = this.#used;
    if (this.#used + need <= this.#arena.length) {
      this.#writeArgs(args);
      if (resultBytes !== null) {
        this.#resOff[i] = this.#used;
        this.#resLen[i] = resultBytes.length;
        this.#arena.set(resultBytes, this.#used);
        this.#used += resultBytes.length;
      } else {
        this.#resOff[i] = -1;
      }
    } else {
      // A single call larger than the arena: keep its arguments, drop the result bytes (marked -2).
      this.#writeArgs(args);
      this.#resOff[i] = -2;
    }
    this.#argOff[i + 1] = this.#used;
    this.#n = i + 1;
    this.#total++;
    if (this.#n === this.#blockSize) this.flush();
  }

  /**
   * Materialise and hand over the records not yet flushed.
   * @returns the records flushed
   */
  flush(): readonly CallRecord[] {
    const out: CallRecord[] = [];
    for (let i = 0; i < this.#n; i++) out.push(this.#materialise(i));
    this.#n = 0;
    this.#used = 0;
    if (out.length > 0) this.#onBlock?.(out);
    return out;
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
    const room = this.#arena.length - this.#used;
    if (room < this.#argBytes(a)) return;
    if (a.path !== undefined) this.#writeString(TAG_PATH, a.path);
    if (a.host !== undefined) this.#writeString(TAG_HOST, a.host);
    if (a.port !== undefined) this.#writeNumber(TAG_PORT, a.port);
    if (a.size !== undefined) this.#writeNumber(TAG_SIZE, a.size);
    if (a.detail !== undefined) this.#writeString(TAG_DETAIL, a.detail);
  }

  #writeString(tag: number, s: string): void {
    const at = this.#used;
    this.#arena[at] = tag;
    const { written } = this.#encoder.encodeInto(s, this.#arena.subarray(at + 5));
    this.#view.setUint32(at + 1, written, true);
    this.#used = at + 5 + written;
  }

  #writeNumber(tag: number, v: number): void {
    const at = this.#used;
    this.#arena[at] = tag;
    this.#view.setFloat64(at + 1, v, true);
    this.#used = at + 9;
  }

  #materialise(i: number): CallRecord {
    const args: { path?: string; host?: string; port?: number; size?: number; detail?: string } = {};
    const decoder = new TextDecoder();
    let at = this.#argOff[i]!;
    const end = this.#resOff[i]! >= 0 ? this.#resOff[i]! : this.#argOff[i + 1]!;
    while (at < end) {
      const tag = this.#arena[at]!;
      if (tag === TAG_PORT || tag === TAG_SIZE) {
        const v = this.#view.getFloat64(at + 1, true);
        if (tag === TAG_PORT) args.port = v;
        else args.size = v;
        at += 9;
      } else {
        const len = this.#view.getUint32(at + 1, true);
        const s = decoder.decode(this.#arena.subarray(at + 5, at + 5 + len));
        if (tag === TAG_PATH) args.path = s;
        else if (tag === TAG_HOST) args.host = s;
        else args.detail = s;
        at += 5 + len;
      }
    }
    const resOff = this.#resOff[i]!;
    const decision = this.#decisions[i] ?? null;
    this.#decisions[i] = null;
    return {
      seq: this.#seq[i]!,
      syscall: this.#syscalls.name(this.#id[i]!),
      args,
      verdict: VERDICTS[this.#verdict[i]!]!,
      rule: decision?.rule ?? null,
      allowed: this.#allowed[i] === 1,
      result: this.#result[i]!,
      start: this.#start[i]!,
      duration: this.#duration[i]!,
      resultBytes: resOff >= 0 ? this.#arena.slice(resOff, resOff + this.#resLen[i]!) : null,
    };
  }
}
