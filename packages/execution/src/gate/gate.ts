import type { ErrorCode, SyscallTable } from '@forgeone/common';
import type { CallContext, Decision, EnforcementMode } from '@forgeone/trust';

/** Index in a container's control array: the container's state ({@link ContainerState}). */
export const CONTROL_STATE = 0;
/** Index in a container's control array: bumped whenever the container's policy changes. */
export const CONTROL_POLICY_EPOCH = 1;
/** Index in a container's control array: the syscall id of the call in progress, or -1 between calls. */
export const CONTROL_IN_CALL = 2;
/** Index in a container's control array: the number of calls that crossed the gate (wraps at 2^31). */
export const CONTROL_CALLS = 3;
/** Numbers per call in a recorded block's fields (the layout is `RecordField` of the recorder). */
export const RECORD_FIELDS = 11;

/** Index in a shared recorder's head: calls recorded and not yet handed over. */
export const RING_PENDING = 0;
/** Index in a shared recorder's head: arena bytes used by those calls. */
export const RING_USED = 1;

/** Length of a container's control array in 32-bit slots. */
export const CONTROL_SLOTS = 8;

/** The state word of a container's control array, read by the gate on every call. */
export const ContainerState = Object.freeze({
  /** Calls proceed to the decision. */
  Running: 0,
  /** The red zone holds the container: the next call blocks (or is refused) until release or termination. */
  Quarantined: 1,
  /** The container is terminated: every call is refused. */
  Terminated: 2,
} as const);

/**
 * Allocate a container's control array: 32-bit slots in shared memory so the kernel (another thread) can
 * quarantine, release or terminate a container while its guest is running.
 * @returns a zeroed Int32Array over a SharedArrayBuffer
 */
export function createControl(): Int32Array {
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
  control[CONTROL_IN_CALL] = -1;
  return control;
}

/** The part of a container policy the gate needs (`ContainerPolicy` from `@forgeone/trust` fits). */
export interface GatePolicy {
  /** The enforcement mode. */
  readonly mode: EnforcementMode;
  /**
   * Decide one call; must not allocate.
   * @param syscallId - interned id
   * @param ctx - the call context
   * @returns a shared decision
   */
  decide(syscallId: number, ctx: CallContext): Decision;
}

/** Verdict numbers used in records: index into {@link VERDICTS}. */
export const VERDICTS = Object.freeze(['allow', 'audit', 'deny', 'quarantine', 'suspended', 'terminated'] as const);

/** A verdict as recorded: the policy's four, plus the two the quarantine flag produces before any decision. */
export type RecordedVerdict = (typeof VERDICTS)[number];

/**
 * Receives every call that crossed the gate, after it was performed (or refused). Implementations must copy
 * what they keep: `args` and `resultBytes` are reused for the next call.
 */
export interface CallRecorder {
  /**
   * Record one call.
   * @param seq - sequence number in the container, from 0
   * @param syscallId - interned id (names from the gate's syscall table)
   * @param args - the canonical arguments the decision saw
   * @param verdict - index into {@link VERDICTS}
   * @param decision - the policy's decision, or null when the quarantine flag refused the call first
   * @param allowed - whether the call was performed
   * @param result - the outcome: 0 for success, an errno or error-variant number otherwise
   * @param start - start time, ms since the epoch (fractional)
   * @param duration - ms spent in the gate and the host function (fractional)
   * @param resultBytes - the bytes of a result that cannot be recomputed (clocks, random, reads), or null
   */
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
  ): void;
  /**
   * {@link CallRecorder.record} with the start time and duration in `times[0]` and `times[1]` (an array the
   * gate reuses). Optional; the gate prefers it: two fractional numbers passed as arguments to a call the
   * compiler did not inline are each boxed on the heap, which costs more than the rest of recording.
   * @param seq - sequence number in the container, from 0
   * @param syscallId - interned id
   * @param args - the canonical arguments the decision saw
   * @param verdict - index into {@link VERDICTS}
   * @param decision - the policy's decision, or null when the quarantine flag refused the call first
   * @param allowed - whether the call was performed
   * @param result - the outcome: 0 for success, an errno or error-variant number otherwise
   * @param times - `[start, duration]`, ms (see {@link CallRecorder.record}); read during the call only
   * @param resultBytes - the bytes of a result that cannot be recomputed, or null
   */
  recordTimed?(
    seq: number,
    syscallId: number,
    args: Readonly<CallArgsView>,
    verdict: number,
    decision: Decision | null,
    allowed: boolean,
    result: number,
    times: Float64Array,
    resultBytes: Uint8Array | null,
  ): void;
  /** Optional: the state the gate may write records into directly ({@link RecordCursor}). */
  readonly cursor?: RecordCursor;
}

/**
 * The recording state of a {@link CallRecorder} that lets the gate write a call's record itself, inline in
 * {@link Gate.exit}, instead of calling `recordTimed` (a call the compiler does not inline costs more than
 * the record). The gate takes this path for a call whose string arguments are at most a `detail` equal to
 * the previous recorded `detail`, and whose result bytes are short; every other call goes through
 * `recordTimed`, which keeps this state up to date. Layout of the fields and the arena: `RecordField`.
 * Implemented by `RingRecorder`; not meant for other callers.
 */
export interface RecordCursor {
  /** Fields of the block being recorded (`RECORD_FIELDS` per call). */
  fields: Float64Array;
  /** Rule index of each call of the block. */
  ruleIds: Int32Array;
  /** Argument and result bytes of the block. */
  arena: Uint8Array;
  /** The same bytes as a DataView. */
  view: DataView;
  /** The same bytes as 32-bit words (the arena starts 8-aligned). */
  words: Uint32Array;
  /** The result buffer last copied from (host functions reuse theirs). */
  src: Uint8Array | null;
  /** {@link RecordCursor.src} as 32-bit words, or null when it is not 4-aligned. */
  srcWords: Uint32Array | null;
  /** Calls in the block. */
  n: number;
  /** Arena bytes used. */
  used: number;
  /** Calls recorded since creation. */
  total: number;
  /** Start time of the block's first call. */
  firstStart: number;
  /** Decision of the last call and its rule index. */
  lastDecision: Decision | null;
  /** Rule index of {@link RecordCursor.lastDecision}. */
  lastRule: number;
  /** The `detail` string last written into this block's arena (undefined after a hand-over). */
  lastDetail: string | undefined;
  /** Offset of its tagged bytes in the arena. */
  lastDetailAt: number;
  /** Length of its tagged bytes. */
  lastDetailLen: number;
  /** Calls per block. */
  readonly blockSize: number;
  /** Largest age of a block's first call before the block is handed over, ms. */
  readonly maxAge: number;
  /** The shared head (`[pending calls, arena bytes used, ...]`) when the recorder is shared, else undefined. */
  readonly head: Int32Array | undefined;
  /**
   * The rule index of a decision not seen last (updates {@link RecordCursor.lastDecision}).
   * @param decision - the decision
   * @returns its rule's index, -1 for none
   */
  ruleOf(decision: Decision | null): number;
  /** Hand the block over (it is full or old). */
  flush(): unknown;
  /**
   * Make `bytes` the {@link RecordCursor.src}.
   * @param bytes - a result buffer
   * @returns its words ({@link RecordCursor.srcWords})
   */
  source(bytes: Uint8Array): Uint32Array | null;
}

/** The canonical arguments of one call: the policy's four plus one free-form canonical detail string. */
export interface CallArgsView {
  /** Absolute, normalised guest path. */
  path: string | undefined;
  /** Lowercase host. */
  host: string | undefined;
  /** Port. */
  port: number | undefined;
  /** Size in bytes. */
  size: number | undefined;
  /** Any other canonical argument text (a key, a file descriptor number, a method), or undefined. */
  detail: string | undefined;
}

/** Options of {@link Gate}. */
export interface GateOptions {
  /** The container's interned syscalls. */
  readonly syscalls: SyscallTable;
  /** The container's live policy. */
  readonly policy: GatePolicy;
  /** The container's control array ({@link createControl}); a private one when omitted. */
  readonly control?: Int32Array;
  /** Where calls are recorded; nothing is recorded when omitted. */
  readonly recorder?: CallRecorder;
  /**
   * What the next call of a quarantined container does: `block` waits on the control array until release
   * (continue) or termination (refused) — for guests in worker threads; `deny` refuses at once — for guests
   * on a thread that must not block. Default `deny`.
   */
  readonly onQuarantined?: 'block' | 'deny';
  /**
   * Called when a decision quarantines the container (quarantine verdict in enforce mode), after the flag
   * was set; the kernel moves the container to the red zone.
   */
  readonly onQuarantine?: (syscall: string, decision: Decision) => void;
  /** Called just before a call blocks on the quarantine flag (the sandbox flushes records there). */
  readonly onHold?: () => void;
  /** Wall clock in ms since the epoch (fractional); default `performance.timeOrigin + performance.now()`. */
  readonly now?: () => number;
  /** The container's anomaly score in [0, 1], read before each decision; default 0. */
  readonly anomaly?: () => number;
  /**
   * The sequence number of the first call (default 0): a container restored from a snapshot continues its
   * execution DNA at the snapshot's trace position.
   */
  readonly startSeq?: number;
}

const ALLOW = 0;
const AUDIT = 1;
const DENY = 2;
const QUARANTINE = 3;
const SUSPENDED = 4;
const TERMINATED = 5;

function verdictIndex(verdict: Decision['verdict']): number {
  // Interned string constants: pointer comparisons, no keyed lookup.
  return verdict === 'allow' ? ALLOW : verdict === 'audit' ? AUDIT : verdict === 'deny' ? DENY : QUARANTINE;
}

/**
 * The gate's call context and per-syscall history. One per gate, refilled for every call. `rate` and
 * `anomaly` are computed when the policy reads them — a policy without history rules never pays for them —
 * from state the gate keeps up to date on every call, so they are exact whichever policy decides (also the
 * first call after a live policy update).
 */
class GateContext implements CallContext {
  now = 0;
  calls = 0;
  denied = 0;
  path: string | undefined = undefined;
  host: string | undefined = undefined;
  port: number | undefined = undefined;
  size: number | undefined = undefined;
  detail: string | undefined = undefined;
  /** The syscall of the call being decided. */
  id = 0;
  /** Calls per syscall that crossed the gate (incremented on exit). */
  counts = new Uint32Array(64);
  // Calls in the last second, approximated by a two-window sliding counter per syscall (no allocation).
  windowStart = new Float64Array(64);
  windowCount = new Uint32Array(64);
  prevCount = new Uint32Array(64);
  readonly #anomalySource: (() => number) | undefined;
  #anomaly = 0;
  #anomalyRead = false;

  constructor(anomaly: (() => number) | undefined, syscalls: number) {
    this.#anomalySource = anomaly;
    // Sized for every syscall the table knows at the start (no growth on a first call).
    if (syscalls > this.counts.length) this.grow(syscalls - 1);
  }

  /** Calls to this syscall in the last second, before this one. */
  get rate(): number {
    const id = this.id;
    const into = (this.now - this.windowStart[id]!) / 1000;
    return Math.floor(this.windowCount[id]! + this.prevCount[id]! * (1 - into));
  }

  /** The container's anomaly score, read at most once per call. */
  get anomaly(): number {
    if (!this.#anomalyRead) {
      this.#anomaly = this.#anomalySource === undefined ? 0 : this.#anomalySource();
      this.#anomalyRead = true;
    }
    return this.#anomaly;
  }

  /**
   * Start deciding a call: roll the syscall's rate window to `now`.
   * @param id - syscall id (within the arrays)
   * @param now - the call's time
   */
  begin(id: number, now: number): void {
    this.id = id;
    this.now = now;
    this.#anomalyRead = false;
    this.calls = this.counts[id]!;
    const start = this.windowStart[id]!;
    const elapsed = now - start;
    if (elapsed >= 1000) {
      if (elapsed >= 2000) {
        this.prevCount[id] = 0;
        this.windowStart[id] = now;
      } else {
        this.prevCount[id] = this.windowCount[id]!;
        this.windowStart[id] = start + 1000;
      }
      this.windowCount[id] = 0;
    }
  }

  grow(id: number): void {
    const size = Math.max(id + 1, this.counts.length * 2);
    const grow = <T extends Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old as never);
      return next;
    };
    this.counts = grow(this.counts, (n) => new Uint32Array(n));
    this.windowStart = grow(this.windowStart, (n) => new Float64Array(n));
    this.windowCount = grow(this.windowCount, (n) => new Uint32Array(n));
    this.prevCount = grow(this.prevCount, (n) => new Uint32Array(n));
  }
}

/**
 * The one gate every host call of a container crosses: (1) the quarantine flag, (2) the policy decision,
 * (3) perform — done by the caller between {@link Gate.enter} and {@link Gate.exit} — and (4) record.
 *
 * The hot path allocates nothing: the caller writes the call's canonical arguments into {@link Gate.args},
 * calls `enter(id)`, performs the call when it returns true, then calls `exit(result)`. Per-syscall counters
 * live in typed arrays indexed by the interned id. The history a policy may read (`rate`, `anomaly`) is
 * computed only when a rule reads it.
 *
 * @example
 * ```ts
 * const gate = new Gate({ syscalls, policy });
 * gate.args.path = '/data/a.txt';
 * if (gate.enter(readId)) { const n = doRead(); gate.exit(0); } else { return gate.refusal; }
 * ```
 */
export class Gate {
  /** The canonical arguments of the call being made; reset by `exit`. */
  readonly args: CallArgsView;
  /** The control array (shared memory). */
  readonly control: Int32Array;
  /** The interned syscalls. */
  readonly syscalls: SyscallTable;
  /** The decision of the last call (null when the quarantine flag refused it before any decision). */
  decision: Decision | null = null;
  /** The error code of the last refused call, or null when it was allowed. */
  refusal: ErrorCode | null = null;

  readonly #policy: GatePolicy;
  readonly #recorder: CallRecorder | undefined;
  readonly #block: boolean;
  readonly #onQuarantine: ((syscall: string, decision: Decision) => void) | undefined;
  readonly #onHold: (() => void) | undefined;
  readonly #now: () => number;
  readonly #ctx: GateContext;
  #denied = 0;
  #seq = 0;
  #id = -1;
  #verdict = 0;
  #allowed = false;
  #start = 0;
  #lastDecision: Decision | null = null;
  #lastVerdict = 0;
  // Start and duration handed to the recorder without boxing them (see CallRecorder.recordTimed).
  readonly #times = new Float64Array(2);
  readonly #timed: boolean;
  readonly #cursor: RecordCursor | undefined;

  /** @param options - syscall table, policy, control array, recorder */
  constructor(options: GateOptions) {
    this.syscalls = options.syscalls;
    this.#policy = options.policy;
    this.control = options.control ?? createControl();
    this.#recorder = options.recorder;
    this.#timed = typeof options.recorder?.recordTimed === 'function';
    this.#cursor = this.#timed ? options.recorder!.cursor : undefined;
    this.#block = options.onQuarantined === 'block';
    this.#onQuarantine = options.onQuarantine;
    this.#onHold = options.onHold;
    const origin = performance.timeOrigin;
    this.#now = options.now ?? (() => origin + performance.now());
    this.#ctx = new GateContext(options.anomaly, options.syscalls.size);
    // The arguments the caller writes are the context the policy reads: nothing is copied per call.
    this.args = this.#ctx;
    const startSeq = options.startSeq ?? 0;
    if (!Number.isSafeInteger(startSeq) || startSeq < 0) throw new RangeError(`startSeq must be a non-negative integer, got ${startSeq}`);
    this.#seq = startSeq;
  }

  /** Calls that crossed the gate so far. */
  get sequence(): number {
    return this.#seq;
  }

  /** Calls refused so far. */
  get denied(): number {
    return this.#denied;
  }

  /**
   * Steps 1 and 2: check the quarantine flag, then decide. Reads the arguments from {@link Gate.args}.
   * @param syscallId - the call's interned id
   * @returns true when the caller must perform the call; false when it is refused ({@link Gate.refusal} says why)
   */
  enter(syscallId: number): boolean {
    // The allow path only (short, for the compiler to inline where it can); quarantine and refusal are out of line.
    const control = this.control;
    const now = this.#now();
    this.#id = syscallId;
    this.#start = now;
    // A plain load (Atomics.load is a builtin call in Node 20, ~5 ns): the kernel's Atomics.store is seen
    // by the next call (every call re-reads the word; nothing caches it across calls). A state other than
    // Running is read again with Atomics before acting on it.
    if (control[CONTROL_STATE] !== ContainerState.Running && !this.#held()) return false;
    control[CONTROL_IN_CALL] = syscallId;
    const ctx = this.#ctx;
    if (syscallId >= ctx.counts.length) ctx.grow(syscallId);
    ctx.begin(syscallId, now);
    ctx.denied = this.#denied;
    const policy = this.#policy;
    const decision = policy.decide(syscallId, ctx);
    ctx.windowCount[syscallId]!++;
    this.decision = decision;
    // Decisions are shared objects: a repeated one needs no lookup.
    const verdict = decision === this.#lastDecision ? this.#lastVerdict : this.#verdictOf(decision);
    this.#verdict = verdict;
    if (verdict <= AUDIT || policy.mode !== 'enforce') {
      this.#allowed = true;
      this.refusal = null;
      return true;
    }
    return this.#refuse(syscallId, decision, verdict);
  }

  #verdictOf(decision: Decision): number {
    const verdict = verdictIndex(decision.verdict);
    this.#lastDecision = decision;
    this.#lastVerdict = verdict;
    return verdict;
  }

  // The container is not running: wait for release (block mode) or refuse. True when the call may go on.
  #held(): boolean {
    const control = this.control;
    let state = Atomics.load(control, CONTROL_STATE);
    if (state === ContainerState.Quarantined && this.#block) {
      // Blocks this thread until the kernel releases (continue) or terminates (refuse) the container.
      this.#onHold?.();
      while (state === ContainerState.Quarantined) {
        Atomics.wait(control, CONTROL_STATE, ContainerState.Quarantined);
        state = Atomics.load(control, CONTROL_STATE);
      }
    }
    if (state === ContainerState.Running) return true;
    this.decision = null;
    this.refusal = state === ContainerState.Quarantined ? 'CONTAINER_QUARANTINED' : 'CONTAINER_TERMINATED';
    this.#verdict = state === ContainerState.Quarantined ? SUSPENDED : TERMINATED;
    this.#allowed = false;
    this.#denied++;
    return false;
  }

  // The policy refused the call (enforce mode).
  #refuse(syscallId: number, decision: Decision, verdict: number): false {
    this.#allowed = false;
    this.#denied++;
    if (verdict === QUARANTINE) {
      Atomics.store(this.control, CONTROL_STATE, ContainerState.Quarantined);
      this.refusal = 'CONTAINER_QUARANTINED';
      this.#onQuarantine?.(this.syscalls.name(syscallId), decision);
    } else {
      this.refusal = decision.code ?? 'POLICY_DENIED';
    }
    return false;
  }

  /**
   * Step 4: record the call entered last and reset the arguments. Call it for refused calls too.
   * @param result - 0 for success, an errno or error-variant number otherwise
   * @param resultBytes - the bytes of a result that cannot be recomputed, or omitted; copied by the recorder
   */
  exit(result: number, resultBytes?: Uint8Array): void {
    const id = this.#id;
    const control = this.control;
    control[CONTROL_IN_CALL] = -1;
    control[CONTROL_CALLS] = (control[CONTROL_CALLS]! + 1) | 0;
    const counts = this.#ctx.counts;
    if (id >= 0 && id < counts.length) counts[id]!++;
    const seq = this.#seq++;
    const a = this.args;
    const recorder = this.#recorder;
    if (recorder !== undefined) {
      const start = this.#start;
      const duration = this.#now() - start;
      const cursor = this.#cursor;
      const detail = a.detail;
      const rl = resultBytes === undefined ? 0 : resultBytes.length;
      if (cursor !== undefined && a.path === undefined && a.host === undefined && (detail === undefined || detail === cursor.lastDetail) && rl <= 16 && cursor.used + rl + 3 <= cursor.arena.length) {
        // The common call, recorded here: the same record recordTimed writes.
        const i = cursor.n;
        const f = cursor.fields;
        const base = i * RECORD_FIELDS;
        // Only the fields the call has (flags: 1 port, 2 size, 4 result bytes, 8 string arguments).
        let flags = 0;
        f[base] = seq;
        f[base + 2] = result;
        f[base + 3] = start;
        f[base + 4] = duration;
        if (detail !== undefined) {
          f[base + 5] = cursor.lastDetailAt;
          f[base + 6] = cursor.lastDetailLen;
          flags = 8;
        }
        if (resultBytes !== undefined) {
          // At a 4-byte boundary, copied in 32-bit words when the source is aligned too (a byte loop costs
          // several times more).
          const at = (cursor.used + 3) & ~3;
          f[base + 7] = at;
          f[base + 8] = rl;
          const src = resultBytes === cursor.src ? cursor.srcWords : cursor.source(resultBytes);
          if (src !== null && (rl & 3) === 0) {
            const words = cursor.words;
            const w = at >> 2;
            for (let k = 0; k < rl >> 2; k++) words[w + k] = src[k]!;
          } else {
            const arena = cursor.arena;
            for (let k = 0; k < rl; k++) arena[at + k] = resultBytes[k]!;
          }
          cursor.used = at + rl;
          flags |= 4;
        }
        const port = a.port;
        if (port !== undefined) {
          f[base + 9] = port;
          flags |= 1;
        }
        const size = a.size;
        if (size !== undefined) {
          f[base + 10] = size;
          flags |= 2;
        }
        f[base + 1] = id * 256 + ((this.#verdict << 5) | (this.#allowed ? 16 : 0) | flags);
        const decision = this.decision;
        cursor.ruleIds[i] = decision === cursor.lastDecision ? cursor.lastRule : cursor.ruleOf(decision);
        cursor.n = i + 1;
        cursor.total++;
        const head = cursor.head;
        if (head !== undefined) {
          // Written after the call is complete: a thread salvaging after a kill never sees half a call.
          head[RING_USED] = cursor.used;
          head[RING_PENDING] = i + 1;
        }
        if (i === 0) cursor.firstStart = start;
        if (i + 1 === cursor.blockSize || start - cursor.firstStart >= cursor.maxAge) cursor.flush();
      } else {
        const times = this.#times;
        times[0] = start;
        times[1] = duration;
        if (this.#timed) recorder.recordTimed!(seq, id, a, this.#verdict, this.decision, this.#allowed, result, times, resultBytes ?? null);
        else recorder.record(seq, id, a, this.#verdict, this.decision, this.#allowed, result, start, duration, resultBytes ?? null);
      }
    }
    a.path = undefined;
    a.host = undefined;
    a.port = undefined;
    a.size = undefined;
    a.detail = undefined;
    this.#id = -1;
  }

  /**
   * Convenience for calls without a special refusal path: enter, perform, exit.
   * @param syscallId - interned id
   * @param perform - the host function; returns the result code (0 = success)
   * @returns the result code, or -1 when refused (see {@link Gate.refusal})
   */
  call(syscallId: number, perform: () => number): number {
    if (!this.enter(syscallId)) {
      this.exit(-1);
      return -1;
    }
    let result = -1;
    try {
      result = perform();
      return result;
    } finally {
      this.exit(result);
    }
  }
}

/**
 * Release a quarantined container: its blocked call (if any) continues to its decision.
 * @param control - the container's control array
 */
export function releaseControl(control: Int32Array): void {
  Atomics.store(control, CONTROL_STATE, ContainerState.Running);
  Atomics.notify(control, CONTROL_STATE);
}

/**
 * Quarantine a container: its next call blocks or is refused.
 * @param control - the container's control array
 */
export function quarantineControl(control: Int32Array): void {
  Atomics.store(control, CONTROL_STATE, ContainerState.Quarantined);
}

/**
 * Terminate a container: a blocked call wakes and is refused, every later call is refused.
 * @param control - the container's control array
 */
export function terminateControl(control: Int32Array): void {
  Atomics.store(control, CONTROL_STATE, ContainerState.Terminated);
  Atomics.notify(control, CONTROL_STATE);
}
