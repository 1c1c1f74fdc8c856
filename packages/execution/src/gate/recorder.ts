import type { SyscallTable } from '@forgeone/common';
import type { Decision } from '@forgeone/trust';
import { RECORD_FIELDS, RING_PENDING, RING_USED, VERDICTS, type CallArgsView, type CallRecorder, type RecordCursor, type RecordedVerdict } from './gate.js';

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

/**
 * Fields of one call in {@link RawBlock.fields}, in this order (a stride of {@link RECORD_FIELDS} numbers).
 * Only the fields a call has are written: the flags in `RecordField.Head` say which of the optional
 * ones are valid (a record written inline by the gate costs one store per field, so absent ones cost none).
 */
export const RecordField = Object.freeze({
  Seq: 0,
  /**
   * `syscall id × 256 + verdict × 32 + allowed × 16 + flags` ({@link RecordFlag}); read it with
   * {@link unpackRecordHead}.
   */
  Head: 1,
  Result: 2,
  Start: 3,
  Duration: 4,
  /** Where the call's string arguments start in the arena (with `RecordFlag.Args`). */
  ArgOffset: 5,
  /**
   * Bytes of the call's string arguments (with `RecordFlag.Args`). A call whose only string argument
   * repeats the previous call's `detail` points at that call's bytes instead of a copy.
   */
  ArgLength: 6,
  /** Where the result bytes start (with `RecordFlag.Result`); -2 when they were dropped (too large). */
  ResultOffset: 7,
  /** Their length (with `RecordFlag.Result`). */
  ResultLength: 8,
  /** The `port` argument (with `RecordFlag.Port`). */
  Port: 9,
  /** The `size` argument (with `RecordFlag.Size`). */
  Size: 10,
} as const);

/** Which optional fields of a record are valid (the low four bits of `RecordField.Head`). */
export const RecordFlag = Object.freeze({
  /** The call had a `port`. */
  Port: 1,
  /** The call had a `size`. */
  Size: 2,
  /** The call has result bytes (or dropped ones). */
  Result: 4,
  /** The call had string arguments. */
  Args: 8,
} as const);

/**
 * Split `RecordField.Head`.
 * @param head - the field's value
 * @returns syscall id, verdict index, whether the call was performed, and the flags
 */
export function unpackRecordHead(head: number): { syscall: number; verdict: number; allowed: boolean; flags: number } {
  const low = head % 256;
  return { syscall: (head - low) / 256, verdict: low >> 5, allowed: (low & 16) !== 0, flags: low & 15 };
}

/** Numbers per call in {@link RawBlock.fields} (defined with the gate, which writes records inline too). */
export { RECORD_FIELDS };

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
  /**
   * String argument and result bytes; a call's string arguments (each a tag byte, a little-endian u32 length and
   * the UTF-8 bytes) are the argument length bytes from its argument offset.
   */
  readonly arena: Uint8Array;
  /**
   * The deciding rule of each call as an index into the recorder's {@link RingRecorder.ruleNames} (-1 for
   * none): what a block posted to another thread carries instead of the strings. Set by {@link RingRecorder}.
   */
  readonly ruleIds?: Int32Array;
  /**
   * Set when the block is a view of one of the recorder's shared slots rather than a copy: the slot's index.
   * The receiving thread takes it with {@link drainSlots} (the recording thread only asks for that, with
   * {@link requestDrain}); until then the recorder does not write into the slot.
   */
  readonly slot?: number;
  /**
   * The block's hand-over number in its recorder (0, 1, 2, ... wrapping at 2^31), set by a shared recorder:
   * a receiver taking blocks from slots and from messages restores their order with it.
   */
  readonly handOver?: number;
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
  /**
   * With `shared`: how many blocks of shared memory the recorder rotates through. A full block is handed over
   * as a view of its slot (no copy on the recording thread) while recording goes on in a free slot; the
   * receiving thread copies it out and gives the slot back ({@link drainSlots}). Default 8; 1 hands over
   * copies only.
   */
  readonly slots?: number;
  /**
   * With `shared`: when every other slot is still handed over, wait up to this long (ms) for the receiver to
   * give one back before handing over a copy instead. Waiting throttles a guest whose records the receiver
   * cannot keep up with; a copy costs the recording thread an allocation and the receiver a bigger message.
   * Default 50.
   */
  readonly slotWaitMs?: number;
}

/** One block's worth of shared memory of a {@link SharedRing}. */
export interface SharedSlot {
  /** Fields of the calls ({@link RECORD_FIELDS} per call). */
  readonly fields: Float64Array;
  /** The arena. */
  readonly arena: Uint8Array;
  /** Rule index of each call ({@link RawBlock.ruleIds}). */
  readonly ruleIds: Int32Array;
}

/**
 * A recorder's memory shared with another thread: the slots, and a head (`[pending calls, arena bytes used,
 * current slot, slot count, drain requested, slots given back so far]`, then per slot `[state (1 = handed over, not yet
 * taken), calls, arena bytes, hand-over number]`; the recorder writes the pending counts after each call is
 * complete). Lets the other thread take handed-over blocks ({@link drainSlots}) and salvage the calls not yet
 * handed over when the recording thread is killed ({@link salvageBlock}).
 */
export interface SharedRing {
  /** The slots. */
  readonly slots: readonly SharedSlot[];
  /** The head (see above). */
  readonly head: Int32Array;
}

const HEAD_PENDING = RING_PENDING;
const HEAD_USED = RING_USED;
const HEAD_CURRENT = 2;
const HEAD_SLOTS = 3;
const HEAD_DRAIN = 4;
const HEAD_RELEASED = 5;
const HEAD_SLOT0 = 6;
const SLOT_STRIDE = 4;
const SLOT_STATE = 0;
const SLOT_COUNT = 1;
const SLOT_USED = 2;
const SLOT_SEQ = 3;

function ruleStrings(ids: Int32Array, n: number, names: readonly string[]): (string | null)[] {
  const rules = new Array<string | null>(n);
  for (let i = 0; i < n; i++) rules[i] = names[ids[i]!] ?? null;
  return rules;
}

// A block copied into one buffer (fields, rule ids, arena): one allocation.
function copyBlock(fields: Float64Array, ruleIds: Int32Array, arena: Uint8Array, n: number, used: number, ruleNames: readonly string[], handOver?: number): RawBlock {
  const fieldBytes = n * RECORD_FIELDS * 8;
  const idBytes = (n * 4 + 7) & ~7;
  const buffer = new ArrayBuffer(fieldBytes + idBytes + used);
  const f = new Float64Array(buffer, 0, n * RECORD_FIELDS);
  f.set(fields.subarray(0, n * RECORD_FIELDS));
  const ids = new Int32Array(buffer, fieldBytes, n);
  ids.set(ruleIds.subarray(0, n));
  const a = new Uint8Array(buffer, fieldBytes + idBytes, used);
  a.set(arena.subarray(0, used));
  const rules = ruleStrings(ids, n, ruleNames);
  return handOver === undefined ? { count: n, fields: f, rules, arena: a, ruleIds: ids } : { count: n, fields: f, rules, arena: a, ruleIds: ids, handOver };
}

// A block that is a view of the recorder's memory (a lent ring or a shared slot): valid until it is given
// back, and mostly never asked for its rule strings on this thread, so they are made on first read (a
// getter on the class: an own accessor per block costs microseconds).
class ViewBlock implements RawBlock {
  readonly count: number;
  readonly fields: Float64Array;
  readonly arena: Uint8Array;
  readonly ruleIds: Int32Array;
  readonly slot?: number;
  readonly handOver?: number;
  readonly #names: readonly string[];
  #rules: (string | null)[] | undefined;

  constructor(count: number, fields: Float64Array, arena: Uint8Array, ruleIds: Int32Array, names: readonly string[], slot?: number, handOver?: number) {
    this.count = count;
    this.fields = fields;
    this.arena = arena;
    this.ruleIds = ruleIds;
    this.#names = names;
    if (slot !== undefined) this.slot = slot;
    if (handOver !== undefined) this.handOver = handOver;
  }

  get rules(): readonly (string | null)[] {
    return (this.#rules ??= ruleStrings(this.ruleIds, this.count, this.#names));
  }
}

function copyOut(slot: SharedSlot, n: number, used: number, ruleNames: readonly string[], handOver?: number): RawBlock {
  return copyBlock(slot.fields, slot.ruleIds, slot.arena, n, used, ruleNames, handOver);
}

/**
 * Recording side: ask the receiving thread to drain the slots. Returns true when the caller must send it a
 * message (no request is pending); false when one is already on its way — requests coalesce, and the next
 * {@link drainSlots} takes every slot handed over before it.
 * @param ring - the recorder's shared memory
 * @returns whether to send a message
 */
export function requestDrain(ring: SharedRing): boolean {
  return Atomics.compareExchange(ring.head, HEAD_DRAIN, 0, 1) === 0;
}

/**
 * Receiving side: take every block the recorder handed over as a shared slot, in hand-over order — copied
 * out (the caller owns them, {@link RawBlock.handOver} set) and the slots given back to the recorder. Call it
 * when the recording thread asks ({@link requestDrain}) and before acting on its other messages; it is cheap
 * when there is nothing to take. Blocks the recorder handed over as copies (no slot was free) reach the
 * receiver another way: order all of them by `handOver`.
 * @param ring - the recorder's shared memory ({@link RingRecorder.shared})
 * @param ruleNames - the recorder's rule names known so far ({@link RingRecorder.ruleNames}) for
 *   {@link RawBlock.rules}; a rule whose name is not among them reads null (resolve later from `ruleIds`)
 * @returns the blocks, oldest first (often none)
 */
export function drainSlots(ring: SharedRing, ruleNames: readonly string[] = []): RawBlock[] {
  const head = ring.head;
  // Cleared before the scan: a slot handed over after the scan finds no request pending and asks again.
  Atomics.store(head, HEAD_DRAIN, 0);
  const lent = lentSlots(ring);
  if (lent.length === 0) return [];
  const out: RawBlock[] = [];
  for (const slot of lent) {
    const at = HEAD_SLOT0 + slot * SLOT_STRIDE;
    out.push(copyOut(ring.slots[slot]!, head[at + SLOT_COUNT]!, head[at + SLOT_USED]!, ruleNames, head[at + SLOT_SEQ]!));
    Atomics.store(head, at + SLOT_STATE, 0);
  }
  Atomics.add(head, HEAD_RELEASED, lent.length);
  Atomics.notify(head, HEAD_RELEASED);
  return out;
}

// Slots handed over and not yet taken, in hand-over order.
function lentSlots(ring: SharedRing): number[] {
  const head = ring.head;
  const lent: { slot: number; seq: number }[] = [];
  for (let k = 0; k < ring.slots.length; k++) {
    const at = HEAD_SLOT0 + k * SLOT_STRIDE;
    if (Atomics.load(head, at + SLOT_STATE) === 1) lent.push({ slot: k, seq: head[at + SLOT_SEQ]! });
  }
  // Hand-over numbers wrap at 2^31: compare by difference.
  lent.sort((x, y) => (x.seq - y.seq) | 0);
  return lent.map((l) => l.slot);
}

/**
 * Read the calls a dead recorder had not handed over yet: blocks handed over but not yet taken by
 * {@link drainSlots}, in order, then the pending calls. Only safe once the recording thread
 * has stopped. Rules resolve through `ruleNames`; calls whose rule name never reached this thread have rule
 * null (their verdicts are kept).
 * @param ring - {@link RingRecorder.shared} of the dead recorder
 * @param ruleNames - the recorder's rule names known so far; default none
 * @returns the calls as a block, or null when there were none
 */
export function salvageBlock(ring: SharedRing, ruleNames: readonly string[] = []): RawBlock | null {
  const head = ring.head;
  const parts: RawBlock[] = [];
  for (const slot of lentSlots(ring)) {
    const at = HEAD_SLOT0 + slot * SLOT_STRIDE;
    parts.push(copyOut(ring.slots[slot]!, head[at + SLOT_COUNT]!, head[at + SLOT_USED]!, ruleNames, head[at + SLOT_SEQ]!));
  }
  const n = head[HEAD_PENDING]!;
  const current = ring.slots[head[HEAD_CURRENT]!];
  if (n > 0 && current !== undefined) parts.push(copyOut(current, n, head[HEAD_USED]!, ruleNames));
  if (parts.length === 0) return null;
  return parts.length === 1 ? parts[0]! : concatBlocks(parts);
}

function concatBlocks(parts: readonly RawBlock[]): RawBlock {
  let count = 0;
  let bytes = 0;
  for (const p of parts) {
    count += p.count;
    bytes += p.arena.length;
  }
  const fields = new Float64Array(count * RECORD_FIELDS);
  const arena = new Uint8Array(bytes);
  const ruleIds = new Int32Array(count);
  const rules: (string | null)[] = [];
  let n = 0;
  let at = 0;
  for (const p of parts) {
    fields.set(p.fields.subarray(0, p.count * RECORD_FIELDS), n * RECORD_FIELDS);
    // Offsets into the arena move by the bytes of the blocks before.
    for (let i = 0; i < p.count; i++) {
      const base = (n + i) * RECORD_FIELDS;
      const flags = fields[base + RecordField.Head]! % 256;
      if ((flags & RecordFlag.Args) !== 0) fields[base + RecordField.ArgOffset] = fields[base + RecordField.ArgOffset]! + at;
      if ((flags & RecordFlag.Result) !== 0 && fields[base + RecordField.ResultOffset]! >= 0) fields[base + RecordField.ResultOffset] = fields[base + RecordField.ResultOffset]! + at;
    }
    arena.set(p.arena, at);
    if (p.ruleIds !== undefined) ruleIds.set(p.ruleIds.subarray(0, p.count), n);
    rules.push(...p.rules);
    n += p.count;
    at += p.arena.length;
  }
  return { count, fields, rules, arena, ruleIds };
}

const TAG_PATH = 1;
const TAG_HOST = 2;
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
    const head = unpackRecordHead(f[base + RecordField.Head]!);
    const flags = head.flags;
    if ((flags & RecordFlag.Port) !== 0) args.port = f[base + RecordField.Port]!;
    if ((flags & RecordFlag.Size) !== 0) args.size = f[base + RecordField.Size]!;
    const hasArgs = (flags & RecordFlag.Args) !== 0;
    let at = hasArgs ? f[base + RecordField.ArgOffset]! : 0;
    const end = hasArgs ? at + f[base + RecordField.ArgLength]! : 0;
    const resOff = (flags & RecordFlag.Result) !== 0 ? f[base + RecordField.ResultOffset]! : -1;
    while (at < end) {
      const tag = block.arena[at]!;
      const len = view.getUint32(at + 1, true);
      const s = decoder.decode(block.arena.subarray(at + 5, at + 5 + len));
      if (tag === TAG_PATH) args.path = s;
      else if (tag === TAG_HOST) args.host = s;
      else args.detail = s;
      at += 5 + len;
    }
    out.push({
      seq: f[base + RecordField.Seq]!,
      syscall: syscalls.name(head.syscall),
      args,
      verdict: VERDICTS[head.verdict]!,
      rule: block.rules[i] ?? null,
      allowed: head.allowed,
      result: f[base + RecordField.Result]!,
      start: f[base + RecordField.Start]!,
      duration: f[base + RecordField.Duration]!,
      resultBytes: resOff >= 0 ? block.arena.slice(resOff, resOff + f[base + RecordField.ResultLength]!) : null,
    });
  }
  return out;
}

interface Ring {
  readonly fields: Float64Array;
  readonly arena: Uint8Array;
  readonly view: DataView;
  readonly words: Uint32Array;
  readonly ruleIds: Int32Array;
}

function newRing(blockSize: number, arenaBytes: number): Ring {
  const arena = new Uint8Array(arenaBytes);
  return { fields: new Float64Array(blockSize * RECORD_FIELDS), arena, view: new DataView(arena.buffer), words: new Uint32Array(arena.buffer, 0, arena.length >> 2), ruleIds: new Int32Array(blockSize) };
}

// The slots of a shared recorder, carved out of one SharedArrayBuffer (one allocation: its pages are only
// backed when written, and a container start does not pay for dozens of buffers).
function sharedRings(slots: number, blockSize: number, arenaBytes: number): Ring[] {
  const fieldBytes = blockSize * RECORD_FIELDS * 8;
  const idBytes = (blockSize * 4 + 7) & ~7;
  const stride = fieldBytes + idBytes + ((arenaBytes + 7) & ~7);
  const sab = new SharedArrayBuffer(slots * stride);
  return Array.from({ length: slots }, (_, k) => {
    const at = k * stride;
    return {
      fields: new Float64Array(sab, at, blockSize * RECORD_FIELDS),
      ruleIds: new Int32Array(sab, at + fieldBytes, blockSize),
      arena: new Uint8Array(sab, at + fieldBytes + idBytes, arenaBytes),
      view: new DataView(sab, at + fieldBytes + idBytes, arenaBytes),
      words: new Uint32Array(sab, at + fieldBytes + idBytes, arenaBytes >> 2),
    };
  });
}

// Byte bound of a string in the arena: tag, u32 length, at most 3 UTF-8 bytes per UTF-16 unit.
function stringBound(s: string | undefined): number {
  return s === undefined ? 0 : 5 + s.length * 3;
}

// One string argument into the arena: tag, u32 length (little-endian), UTF-8 bytes. Returns the next offset.
function writeString(arena: Uint8Array, at: number, tag: number, s: string): number {
  arena[at] = tag;
  // ASCII fast path without allocation; anything else goes through the encoder.
  const len = s.length;
  const body = at + 5;
  let i = 0;
  for (; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    arena[body + i] = c;
  }
  let written = i;
  if (i < len) written = i + encoder.encodeInto(s.slice(i), arena.subarray(body + i)).written;
  arena[at + 1] = written;
  arena[at + 2] = written >>> 8;
  arena[at + 3] = written >>> 16;
  arena[at + 4] = written >>> 24;
  return body + written;
}

const encoder = new TextEncoder();

// A short result (at most 32 bytes) into the arena at `at`, in 32-bit words.
function copyShort(arena: Uint8Array, view: DataView, at: number, bytes: Uint8Array, src: DataView, length: number): void {
  let k = 0;
  for (; k + 4 <= length; k += 4) view.setUint32(at + k, src.getUint32(k, true), true);
  for (; k < length; k++) arena[at + k] = bytes[k]!;
}

/**
 * A {@link CallRecorder} that writes fixed-size fields into typed arrays and variable bytes (arguments,
 * results) into one arena, so recording a call allocates nothing. Every `blockSize` calls (or when the
 * arena fills) the used parts are handed to `onBlock` as a {@link RawBlock}. Decoding and hashing happen off
 * the hot path — the observer seals blocks into the execution DNA, on another thread when the guest runs in
 * a worker.
 *
 * How a block is handed over, cheapest first:
 * - `shared` with free slots: as a view of its shared slot; the receiving thread copies it out
 *   ({@link drainSlots}) and gives the slot back. The recording thread copies nothing.
 * - in one thread, when the receiver gives blocks back ({@link RingRecorder.recycle}): double-buffered, the
 *   ring itself is handed over and recording goes on in the one given back.
 * - otherwise a copy, the receiver's to keep (one allocation per block).
 */
export class RingRecorder implements CallRecorder {
  readonly #arenaBytes: number;
  readonly #onBlock: ((block: RawBlock) => void) | undefined;
  readonly #head: Int32Array | undefined;
  readonly #slots: readonly Ring[];
  readonly #slotWait: number;
  /** The recorder's memory when created with `shared: true`, else undefined. */
  readonly shared: SharedRing | undefined;
  /**
   * The recording state, which the gate also writes records into directly ({@link RecordCursor}): the
   * block being recorded, its counts, the last decision and the last `detail` written.
   */
  readonly cursor: RecordCursor;
  // The ring being recorded into.
  #ring: Ring;
  #current = 0;
  #handedOver = 0;
  #slotsLent = 0;
  // Rule names by index.
  readonly #ruleNames: string[] = [];
  readonly #ruleIndex = new Map<string, number>();
  // In one thread: the second ring of a receiver that recycles blocks (null while lent out, or never made),
  // and the ring last handed over itself, until the receiver recycles it.
  #spare: Ring | null = null;
  #lent: Ring | null = null;
  #recycling = false;
  readonly #times = new Float64Array(2);
  // A DataView over the last short result of the general path (host functions reuse their result buffers).
  #src: Uint8Array | null = null;
  #srcView: DataView = new DataView(new ArrayBuffer(0));

  /** @param options - block size, block sink */
  constructor(options: RingRecorderOptions = {}) {
    const blockSize = options.blockSize ?? 256;
    this.#arenaBytes = options.arenaBytes ?? 256 * 1024;
    this.#onBlock = options.onBlock;
    const shared = options.shared === true;
    const slots = shared ? Math.max(1, Math.floor(options.slots ?? 8)) : 1;
    this.#slotWait = Math.max(0, options.slotWaitMs ?? 50);
    this.#slots = shared ? sharedRings(slots, blockSize, this.#arenaBytes) : [newRing(blockSize, this.#arenaBytes)];
    const ring = this.#slots[0]!;
    this.#ring = ring;
    this.#head = shared ? new Int32Array(new SharedArrayBuffer((HEAD_SLOT0 + slots * SLOT_STRIDE) * 4)) : undefined;
    if (this.#head !== undefined) this.#head[HEAD_SLOTS] = slots;
    this.shared = shared ? { slots: this.#slots.map((r) => ({ fields: r.fields, arena: r.arena, ruleIds: r.ruleIds })), head: this.#head! } : undefined;
    // One object literal, every field set: a single hidden class for the gate's inline path.
    this.cursor = {
      fields: ring.fields,
      ruleIds: ring.ruleIds,
      arena: ring.arena,
      view: ring.view,
      words: ring.words,
      src: null,
      srcWords: null,
      n: 0,
      used: 0,
      total: 0,
      firstStart: 0,
      lastDecision: null,
      lastRule: -1,
      lastDetail: undefined,
      lastDetailAt: 0,
      lastDetailLen: 0,
      blockSize,
      maxAge: options.maxBlockAgeMs ?? Infinity,
      head: this.#head,
      ruleOf: (decision) => this.#rule(decision),
      flush: () => this.flush(),
      source: (bytes) => {
        const words = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2) : null;
        this.cursor.src = bytes;
        this.cursor.srcWords = words;
        return words;
      },
    };
  }

  /** Calls recorded so far (flushed or not). */
  get total(): number {
    return this.cursor.total;
  }

  /** Calls recorded and not yet handed over. */
  get pending(): number {
    return this.cursor.n;
  }

  /** Shared slots handed over and not yet given back by the receiver (0 for a recorder without slots). */
  get slotsHandedOver(): number {
    const head = this.#head;
    if (head === undefined) return 0;
    return (this.#slotsLent - Atomics.load(head, HEAD_RELEASED)) | 0;
  }

  /**
   * The names behind {@link RawBlock.ruleIds}, by index (grows as new rules decide calls).
   * @returns the names so far
   */
  ruleNames(): readonly string[] {
    return this.#ruleNames;
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
    const times = this.#times;
    times[0] = start;
    times[1] = duration;
    this.recordTimed(seq, syscallId, args, verdict, decision, allowed, result, times, resultBytes);
  }

  /** @inheritdoc */
  recordTimed(
    seq: number,
    syscallId: number,
    args: Readonly<CallArgsView>,
    verdict: number,
    decision: Decision | null,
    allowed: boolean,
    result: number,
    times: Float64Array,
    resultBytes: Uint8Array | null,
  ): void {
    // The general path (the gate records the common call itself, see Gate.exit): string arguments and result
    // bytes through #bytes, which may hand the block over first when the arena is full.
    const c = this.cursor;
    // First: it may hand the block over, which changes the block and the call's index.
    let flags = this.#bytes(args, resultBytes);
    const i = c.n;
    const f = c.fields;
    const base = i * RECORD_FIELDS;
    const start = times[0]!;
    const port = args.port;
    const size = args.size;
    f[base] = seq;
    f[base + 2] = result;
    f[base + 3] = start;
    f[base + 4] = times[1]!;
    if (port !== undefined) {
      f[base + 9] = port;
      flags |= 1;
    }
    if (size !== undefined) {
      f[base + 10] = size;
      flags |= 2;
    }
    f[base + 1] = syscallId * 256 + ((verdict << 5) | (allowed ? 16 : 0) | flags);
    // Decisions are shared objects: a repeated one needs no lookup.
    c.ruleIds[i] = decision === c.lastDecision ? c.lastRule : this.#rule(decision);
    c.n = i + 1;
    c.total++;
    const head = this.#head;
    if (head !== undefined) {
      // Written after the call is complete: a thread salvaging after a kill never sees half a call.
      head[HEAD_USED] = c.used;
      head[HEAD_PENDING] = i + 1;
    }
    if (i === 0) c.firstStart = start;
    if (i + 1 === c.blockSize || start - c.firstStart >= c.maxAge) this.flush();
  }

  #rule(decision: Decision | null): number {
    let id = -1;
    const rule = decision === null ? null : decision.rule;
    if (rule !== null) {
      id = this.#ruleIndex.get(rule) ?? -1;
      if (id < 0) {
        id = this.#ruleNames.length;
        this.#ruleNames.push(rule);
        this.#ruleIndex.set(rule, id);
      }
    }
    this.cursor.lastDecision = decision;
    this.cursor.lastRule = id;
    return id;
  }

  // String arguments and result bytes of the next call into the arena (handing the block over first when
  // they do not fit), and its offset fields; returns the flags of what it wrote.
  #bytes(args: Readonly<CallArgsView>, resultBytes: Uint8Array | null): number {
    const c = this.cursor;
    const path = args.path;
    const host = args.host;
    const detail = args.detail;
    const argBytes = stringBound(path) + stringBound(host) + stringBound(detail);
    const resultLength = resultBytes === null ? 0 : resultBytes.length;
    if (c.used + argBytes + resultLength > c.arena.length && c.n > 0) this.flush();
    const arena = c.arena;
    const f = c.fields;
    const base = c.n * RECORD_FIELDS;
    let used = c.used;
    let flags = 0;
    if (argBytes > 0 && used + argBytes <= arena.length) {
      const from = used;
      if (path !== undefined) used = writeString(arena, used, TAG_PATH, path);
      if (host !== undefined) used = writeString(arena, used, TAG_HOST, host);
      if (detail !== undefined) {
        // Remembered, so the next call with the same detail points at these bytes (Gate.exit).
        c.lastDetail = detail;
        c.lastDetailAt = used;
        used = writeString(arena, used, TAG_DETAIL, detail);
        c.lastDetailLen = used - c.lastDetailAt;
      }
      f[base + RecordField.ArgOffset] = from;
      f[base + RecordField.ArgLength] = used - from;
      flags = RecordFlag.Args;
    }
    if (resultBytes !== null) {
      flags |= RecordFlag.Result;
      if (used + resultLength <= arena.length) {
        f[base + RecordField.ResultOffset] = used;
        f[base + RecordField.ResultLength] = resultLength;
        if (resultLength <= 32) {
          // Short results (clocks, flags, small reads) in 32-bit words: TypedArray#set costs more.
          let src = this.#srcView;
          if (resultBytes !== this.#src || src.byteLength < resultLength) {
            src = new DataView(resultBytes.buffer, resultBytes.byteOffset, resultLength);
            this.#src = resultBytes;
            this.#srcView = src;
          }
          copyShort(arena, c.view, used, resultBytes, src, resultLength);
        } else {
          arena.set(resultBytes, used);
        }
        used += resultLength;
      } else {
        // A single result larger than the arena: keep the call, mark its bytes as dropped.
        f[base + RecordField.ResultOffset] = -2;
      }
    }
    c.used = used;
    return flags;
  }

  // A slot other than the current one that the receiver gave back, or -1.
  #freeSlot(): number {
    const head = this.#head!;
    const slots = this.#slots.length;
    for (let d = 1; d < slots; d++) {
      const k = (this.#current + d) % slots;
      if (Atomics.load(head, HEAD_SLOT0 + k * SLOT_STRIDE + SLOT_STATE) === 0) return k;
    }
    return -1;
  }

  #use(ring: Ring): void {
    this.#ring = ring;
    const c = this.cursor;
    c.fields = ring.fields;
    c.arena = ring.arena;
    c.view = ring.view;
    c.words = ring.words;
    c.ruleIds = ring.ruleIds;
  }

  /**
   * Hand over the calls not yet handed over (to `onBlock`, and as the return value).
   * @returns the block, or null when there was nothing to hand over
   */
  flush(): RawBlock | null {
    const c = this.cursor;
    const n = c.n;
    if (n === 0) return null;
    const used = c.used;
    const blockSize = c.blockSize;
    const head = this.#head;
    const names = this.#ruleNames;
    let block: RawBlock | null = null;
    if (head !== undefined) {
      // Shared: hand over the slot itself when another one is free to record into.
      let next = this.#freeSlot();
      if (next < 0 && this.#slots.length > 1 && this.#slotWait > 0) {
        // Every other slot is still with the receiver: give it a moment.
        const deadline = performance.now() + this.#slotWait;
        for (;;) {
          const released = Atomics.load(head, HEAD_RELEASED);
          next = this.#freeSlot();
          const left = deadline - performance.now();
          if (next >= 0 || left <= 0) break;
          Atomics.wait(head, HEAD_RELEASED, released, left);
        }
      }
      if (next >= 0) {
        const slot = this.#current;
        const ring = this.#slots[slot]!;
        const at = HEAD_SLOT0 + slot * SLOT_STRIDE;
        head[at + SLOT_COUNT] = n;
        head[at + SLOT_USED] = used;
        head[at + SLOT_SEQ] = this.#handedOver;
        this.#handedOver = (this.#handedOver + 1) | 0;
        Atomics.store(head, at + SLOT_STATE, 1);
        this.#slotsLent = (this.#slotsLent + 1) | 0;
        const ruleIds = n === blockSize ? ring.ruleIds : ring.ruleIds.subarray(0, n);
        block = new ViewBlock(n, n === blockSize ? ring.fields : ring.fields.subarray(0, n * RECORD_FIELDS), ring.arena.subarray(0, used), ruleIds, names, slot, head[at + SLOT_SEQ]!);
        this.#current = next;
        this.#use(this.#slots[next]!);
        head[HEAD_CURRENT] = next;
      }
    } else if (this.#spare !== null) {
      // Double-buffered: hand over the ring itself, record into the spare.
      const lent = this.#ring;
      const ruleIds = n === blockSize ? lent.ruleIds : lent.ruleIds.subarray(0, n);
      block = new ViewBlock(n, n === blockSize ? lent.fields : lent.fields.subarray(0, n * RECORD_FIELDS), lent.arena.subarray(0, used), ruleIds, names);
      this.#lent = lent;
      this.#use(this.#spare);
      this.#spare = null;
    }
    if (block === null) {
      // Otherwise a copy: one allocation per block.
      let handOver: number | undefined;
      if (head !== undefined) {
        handOver = this.#handedOver;
        this.#handedOver = (this.#handedOver + 1) | 0;
      }
      block = copyBlock(c.fields, c.ruleIds, c.arena, n, used, names, handOver);
    }
    c.n = 0;
    c.used = 0;
    // The next block starts without a detail to point back at (a block's arena is self-contained).
    c.lastDetail = undefined;
    if (head !== undefined) {
      head[HEAD_USED] = 0;
      head[HEAD_PENDING] = 0;
    }
    this.#onBlock?.(block);
    return block;
  }

  /**
   * Give a block back once it is no longer needed (decoded, hashed, stored) by a receiver on this thread:
   * its memory becomes the recorder's again, so later blocks are handed over without a copy. Does nothing
   * for a shared recorder (its slots come back through {@link drainSlots}), for a block that was
   * transferred, or for one this recorder did not make.
   * @param block - a block this recorder handed over; it must not be read afterwards
   */
  recycle(block: RawBlock): void {
    if (this.#head !== undefined || this.#spare !== null) return;
    const lent = this.#lent;
    if (lent !== null) {
      // A transferred block's buffer is detached (length 0): not reusable.
      if (block.fields.buffer === lent.fields.buffer && lent.arena.length === this.#arenaBytes) {
        this.#lent = null;
        this.#spare = lent;
      }
      return;
    }
    if (!this.#recycling) {
      // The first block given back was a copy: from now on the recorder double-buffers.
      this.#recycling = true;
      this.#spare = newRing(this.cursor.blockSize, this.#arenaBytes);
    }
  }
}
