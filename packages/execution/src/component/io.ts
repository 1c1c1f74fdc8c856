import { ForgeError } from '@forgeone/common';
import { HostResultError, RESULT_FAILED, RESULT_OK, RESULT_REFUSED, failureBytes, refusalBytes, type HostContext } from './host.js';

/**
 * The symbol jco calls when the guest drops a handle it owns (`Symbol.dispose`, or `Symbol.for('dispose')`
 * where the runtime has none): host resources implement their drop under it.
 */
export const DISPOSE: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('dispose');

/** Interned ids of the bookkeeping syscalls of `wasi:io` (one set per host context). */
export interface IoIds {
  /** `wasi:io/check-write`: `output-stream.check-write`. */
  readonly checkWrite: number;
  /** `wasi:io/flush`: `output-stream.flush` and `blocking-flush`. */
  readonly flush: number;
  /** `wasi:io/subscribe`: `subscribe` of streams, sockets and futures. */
  readonly subscribe: number;
  /** `wasi:io/ready`: `pollable.ready`. */
  readonly ready: number;
  /** `wasi:io/block`: `pollable.block`. */
  readonly block: number;
  /** `wasi:io/drop`: the guest dropped a host resource. */
  readonly drop: number;
  /**
   * `wasi:io/error`: the guest inspected an error resource (`to-debug-string`, `filesystem-error-code`,
   * `network-error-code`, `http-error-code`).
   */
  readonly error: number;
}

const idsOf = new WeakMap<HostContext, IoIds>();

/**
 * The ids of the `wasi:io` bookkeeping syscalls for a host context, interned on first use (setup time).
 * @param ctx - the host context
 * @returns the ids (one shared object per context)
 */
export function ioIds(ctx: HostContext): IoIds {
  let ids = idsOf.get(ctx);
  if (ids === undefined) {
    ids = Object.freeze({
      checkWrite: ctx.id('wasi:io/check-write'),
      flush: ctx.id('wasi:io/flush'),
      subscribe: ctx.id('wasi:io/subscribe'),
      ready: ctx.id('wasi:io/ready'),
      block: ctx.id('wasi:io/block'),
      drop: ctx.id('wasi:io/drop'),
      error: ctx.id('wasi:io/error'),
    });
    idsOf.set(ctx, ids);
  }
  return ids;
}

/**
 * Cross the gate for the guest's drop of a host resource: `wasi:io/drop` with `detail` = what was dropped
 * (`pollable`, `stdout`, `fields`, ...) and `path` for a file stream. A drop has no way to fail: a refused
 * drop is recorded as refused (result -1) and the caller frees the resource all the same — a guest must
 * never keep host resources alive by being refused the right to let go of them.
 * @param ctx - the host context
 * @param what - the dropped resource, as recorded in `detail`
 * @param path - canonical guest path of a file stream, else undefined
 */
export function gateDrop(ctx: HostContext, what: string, path?: string): void {
  const gate = ctx.gate;
  gate.args.detail = what;
  gate.args.path = path;
  if (gate.enter(ioIds(ctx).drop)) gate.exit(RESULT_OK);
  else gate.exit(RESULT_REFUSED, refusalBytes(ctx.refusalCode()));
}

/**
 * Cross the gate for the guest's inspection of an error resource: `wasi:io/error` with `detail` = the
 * function (`to-debug-string`, `filesystem-error-code`, `network-error-code`, `http-error-code`). None of
 * them has an error case: refused, the call traps with the refusal code. The caller computes the answer from
 * the error (guest state: nothing is recorded) and closes the call with `ctx.gate.exit(RESULT_OK)`.
 * @param ctx - the host context
 * @param fn - the function, recorded as `detail`
 * @throws ForgeError with the refusal code when refused
 */
export function enterErrorInspection(ctx: HostContext, fn: string): void {
  ctx.gate.args.detail = fn;
  ctx.enterOrTrap(ioIds(ctx).error);
}

/**
 * `wasi:io/error.error`: the error resource a stream's `last-operation-failed` carries. Handed to a guest
 * (attached to its container), `to-debug-string` crosses the gate as `wasi:io/error` (a trap when refused)
 * and the drop as `wasi:io/drop` (`error`).
 */
export class IoError {
  /** A ForgeOne error code (`POLICY_DENIED`, `IO_ERROR`, ...). */
  readonly code: string;
  /** What happened. */
  readonly message: string;
  /** The `wasi:filesystem` error code for `filesystem-error-code`, if this came from a file. */
  readonly filesystemCode: string | undefined;
  #ctx: HostContext | undefined;

  /**
   * @param code - a ForgeOne error code
   * @param message - what happened
   * @param filesystemCode - the filesystem error code, if any
   */
  constructor(code: string, message: string, filesystemCode?: string) {
    this.code = code;
    this.message = message;
    this.filesystemCode = filesystemCode;
  }

  /**
   * Implements `to-debug-string`.
   * @returns `code: message`, for the guest's diagnostics
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  toDebugString(): string {
    const ctx = this.#ctx;
    if (ctx === undefined) return `${this.code}: ${this.message}`;
    enterErrorInspection(ctx, 'to-debug-string');
    ctx.gate.exit(RESULT_OK);
    return `${this.code}: ${this.message}`;
  }

  /**
   * Bind the error to the container it is handed to, so the guest's drop of it crosses that gate.
   * @param ctx - the host context
   * @returns this
   * @internal
   */
  attach(ctx: HostContext): this {
    this.#ctx = ctx;
    return this;
  }

  /** The guest dropped the error: crosses the gate as `wasi:io/drop` (`error`); nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'error');
  }
}

/**
 * A stream failure that belongs in the record: a read or write that fails with it records
 * `{ code, message }` (`failureBytes`) as the call's result bytes, so a replay fails the call the same way
 * (a socket stream's reset cannot be recomputed). Other {@link IoError}s record no bytes.
 */
export class RecordedIoError extends IoError {}

/** What a failed stream call records: the failure of a {@link RecordedIoError}, else nothing. */
function failureRecord(e: unknown): Uint8Array | undefined {
  return e instanceof RecordedIoError ? failureBytes(e.code, e.message) : undefined;
}

/**
 * Record a refused stream call and build the stream's error for it: `last-operation-failed` carrying an
 * {@link IoError} with the refusal code.
 * @param ctx - the host context
 * @param id - the refused syscall
 * @returns the error to throw
 */
function streamRefused(ctx: HostContext, id: number): HostResultError {
  const gate = ctx.gate;
  const failed = new IoError(ctx.refusalCode(), `${gate.syscalls.name(id)} refused`).attach(ctx);
  gate.exit(RESULT_REFUSED, refusalBytes(failed.code));
  return new HostResultError({ tag: 'last-operation-failed', val: failed });
}

/** The result bytes of `pollable.ready`: one byte, 1 when ready (recorded, so a replay answers the same). */
const READY = new Uint8Array([1]);
const NOT_READY = new Uint8Array([0]);

const waitCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Sleep the current thread (guests run in workers; the main thread may block too in Node).
 * @param ms - milliseconds
 */
function sleep(ms: number): void {
  if (ms > 0) Atomics.wait(waitCell, 0, 0, ms);
}

/**
 * `wasi:io/poll.pollable`. Everything this host does is synchronous, so a pollable is ready at once, except
 * a clock subscription, which is ready at its monotonic deadline. A pollable handed to a guest (built with a
 * host context) crosses the gate on `ready` (`wasi:io/ready`, the answer recorded as one byte), `block`
 * (`wasi:io/block`) and its drop (`wasi:io/drop`), with `detail` = what it waits for (`clock`, `stdout`,
 * ...; `pollable:clock` for the drop); `ready` and `block` have no error case, so a refusal traps with its
 * code.
 */
export class Pollable {
  /** Monotonic deadline in ns, or -1 for ready at once. */
  readonly deadline: bigint;
  readonly #now: () => bigint;
  readonly #sleep: (ms: number) => void;
  readonly #ctx: HostContext | undefined;
  readonly #ids: IoIds | undefined;
  readonly #label: string;
  readonly #dropLabel: string;
  /** For a pollable that waits on the outside world (a socket's input): whether it is ready within `waitMs`. */
  readonly probe: ((waitMs: number) => boolean) | undefined;

  /**
   * @param now - the monotonic clock (ns)
   * @param deadline - the deadline (ns), or -1n for always ready
   * @param sleeper - how to wait (the adapter waits on the container's control array, so termination wakes it)
   * @param ctx - the host context whose gate the guest's calls cross; without one (a host-side pollable)
   *   nothing is gated
   * @param label - what the pollable waits for, recorded as `detail` (`clock`, `stdout`, ...); its drop
   *   records `pollable:<label>`
   * @param probe - for a pollable ready when something outside happens (bytes on a socket): answers whether
   *   it is ready, waiting at most the given ms; the deadline is then ignored
   */
  constructor(now: () => bigint, deadline = -1n, sleeper: (ms: number) => void = sleep, ctx?: HostContext, label = 'pollable', probe?: (waitMs: number) => boolean) {
    this.#now = now;
    this.deadline = deadline;
    this.#sleep = sleeper;
    this.#ctx = ctx;
    this.#ids = ctx === undefined ? undefined : ioIds(ctx);
    this.#label = label;
    this.#dropLabel = `pollable:${label}`;
    this.probe = probe;
  }

  /**
   * Whether the deadline has passed (or the probe says ready), without crossing the gate (`poll` crossed it
   * for the whole list).
   * @returns whether the pollable is ready
   * @internal
   */
  isReady(): boolean {
    if (this.probe !== undefined) return this.probe(0);
    return this.deadline < 0n || this.#now() >= this.deadline;
  }

  /**
   * Implements `ready`.
   * @returns whether the pollable is ready (during a replay: what the record says)
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  ready(): boolean {
    const ctx = this.#ctx;
    if (ctx === undefined) return this.isReady();
    ctx.gate.args.detail = this.#label;
    ctx.enterOrTrap(this.#ids!.ready);
    let ready: boolean;
    const recorded = ctx.replaying ? ctx.recorded() : null;
    if (recorded !== null && recorded.length === 1) ready = recorded[0] === 1;
    else ready = this.isReady();
    ctx.gate.exit(RESULT_OK, ready ? READY : NOT_READY);
    return ready;
  }

  /**
   * Implements `block`: wait until ready (a replay does not wait: the record says the wait ended).
   * @throws ForgeError with the refusal code (a trap) when the gate refuses; `CONTAINER_TERMINATED` when
   *   the container is terminated while waiting
   */
  block(): void {
    const ctx = this.#ctx;
    if (ctx === undefined) {
      if (this.probe !== undefined) waitProbe(this.probe, this.#sleep);
      else waitUntil(this.deadline, this.#now, this.#sleep);
      return;
    }
    ctx.gate.args.detail = this.#label;
    ctx.enterOrTrap(this.#ids!.block);
    try {
      if (ctx.replaying) {
        // the record says the wait ended
      } else if (this.probe !== undefined) waitProbe(this.probe, this.#sleep);
      else waitUntil(this.deadline, this.#now, this.#sleep);
    } catch (e) {
      ctx.gate.exit(RESULT_FAILED);
      throw e;
    }
    ctx.gate.exit(RESULT_OK);
  }

  /** The guest dropped the pollable: crosses the gate as `wasi:io/drop` (`pollable:<label>`); nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, this.#dropLabel);
  }

  /**
   * How this pollable waits.
   * @internal
   */
  get sleeper(): (ms: number) => void {
    return this.#sleep;
  }
}

/** How long one wait on a probe lasts before the container's state is checked again, ms. */
const PROBE_SLICE_MS = 100;

/**
 * Wait until a probe says ready, in slices; between slices `sleeper(0)` checks the container's state (it
 * throws when the container was terminated meanwhile).
 * @param probe - the readiness probe
 * @param sleeper - the pollable's sleeper
 */
export function waitProbe(probe: (waitMs: number) => boolean, sleeper: (ms: number) => void): void {
  while (!probe(PROBE_SLICE_MS)) sleeper(0);
}

function waitUntil(deadline: bigint, now: () => bigint, sleeper: (ms: number) => void): void {
  if (deadline < 0n) return;
  for (;;) {
    const left = deadline - now();
    if (left <= 0n) return;
    sleeper(Math.ceil(Number(left) / 1e6));
  }
}

/**
 * `wasi:io/poll.poll`: the indices of the ready pollables, waiting for the first deadline when none is ready.
 * The pollables' own `ready` is not called (the caller crossed the gate once for the whole list).
 * @param list - pollables
 * @param now - the monotonic clock (ns)
 * @returns indices of the ready ones
 * @throws ForgeError `INVALID_ARGUMENT` (trap) for an empty list, as WASI requires
 */
export function pollList(list: readonly Pollable[], now: () => bigint): Uint32Array {
  if (list.length === 0) throw new ForgeError('INVALID_ARGUMENT', 'poll on an empty list');
  for (;;) {
    let n = 0;
    for (const p of list) if (p.isReady()) n++;
    if (n > 0) {
      const out = new Uint32Array(n);
      let j = 0;
      for (let i = 0; i < list.length; i++) if (list[i]!.isReady()) out[j++] = i;
      return out;
    }
    // None is ready: every one is a clock subscription with a deadline, or waits on a probe (a socket).
    let first: Pollable | undefined;
    let probed: Pollable | undefined;
    for (const p of list) {
      if (p.probe !== undefined) probed ??= p;
      else if (first === undefined || p.deadline < first.deadline) first = p;
    }
    if (probed === undefined) {
      waitUntil(first!.deadline, now, first!.sleeper);
      continue;
    }
    // Wait on the probes in turn, each for a slice no longer than the time to the earliest deadline.
    let slice = PROBE_SLICE_MS;
    if (first !== undefined) slice = Math.max(0, Math.min(slice, Math.ceil(Number(first.deadline - now()) / 1e6)));
    const probes = list.filter((p) => p.probe !== undefined);
    const each = Math.max(1, Math.floor(slice / probes.length));
    for (const p of probes) if (p.probe!(each)) break;
    probed.sleeper(0);
  }
}

/** `closed` of `wasi:io/streams.stream-error`. */
const CLOSED = Object.freeze({ tag: 'closed' });

/** Where an output stream's bytes go; may throw an {@link IoError} to fail the write with its code. */
export type ByteSink = (bytes: Uint8Array) => void;

/** Where an input stream's bytes come from: the next at most `max` bytes, or null at end of stream; may throw an {@link IoError}. */
export type ByteSource = (max: number) => Uint8Array | null;

/** Extra parts of a stream over the outside world (a socket): what each read or write records, how it waits. */
export interface StreamTarget {
  /** Canonical host recorded with each read or write (`host` of the call). */
  readonly host?: string;
  /** Port recorded with each read or write. */
  readonly port?: number;
  /**
   * Whether a read would now return something (bytes, the end, an error), waiting at most `waitMs`: the
   * stream's pollable is ready when it says so, and `blocking-read` waits for it (not during a replay).
   */
  readonly readable?: (waitMs: number) => boolean;
  /** How to wait between probes (checks the container's state); default a plain sleep. */
  readonly sleeper?: (ms: number) => void;
  /**
   * The bytes a read returns are already in the record (a response body, recorded with the response), so
   * a replay recomputes them: reads record no result bytes.
   */
  readonly recomputed?: boolean;
}

/** Most bytes a single write may carry (what `check-write` grants). */
export const MAX_WRITE = 1 << 20;
const MAX_WRITE_BIG = BigInt(MAX_WRITE);
/** Most bytes a single read returns. */
export const MAX_READ = 1 << 20;

/**
 * What a stream's bookkeeping calls record as `detail`: `file` for a file stream, else the last part of the
 * stream's syscall (`stdout`, `stderr`, `stdin`), else `stream`.
 */
function streamLabel(ctx: HostContext, id: number, path: string | undefined): string {
  if (path !== undefined) return 'file';
  if (id < 0) return 'stream';
  const name = ctx.gate.syscalls.name(id);
  return name.slice(name.lastIndexOf('/') + 1);
}

/**
 * `wasi:io/streams.output-stream`. Each write crosses the gate under the stream's syscall (`wasi:cli/stdout`
 * for stdout) with `size`; a refused write fails with `last-operation-failed` carrying an {@link IoError}
 * whose code is the refusal code. The bookkeeping crosses it too, with the stream's label as `detail` (and
 * its `path` for a file): `check-write` (`wasi:io/check-write`), `flush` and `blocking-flush`
 * (`wasi:io/flush`) — refused, they fail with `last-operation-failed` the same way — `subscribe`
 * (`wasi:io/subscribe`, a trap when refused: it has no error case) and the drop (`wasi:io/drop`).
 */
export class OutputStream {
  readonly #ctx: HostContext;
  readonly #id: number;
  readonly #sink: ByteSink | undefined;
  readonly #detail: string | undefined;
  readonly #path: string | undefined;
  readonly #now: () => bigint;
  readonly #ids: IoIds;
  readonly #label: string;
  readonly #target: StreamTarget | undefined;
  #closed = false;

  /**
   * @param ctx - the host context
   * @param syscallId - interned syscall of writes, or -1 for a stream into host memory that was already
   *   decided and recorded as a whole (an HTTP request body)
   * @param sink - where bytes go (dropped when undefined)
   * @param now - monotonic clock for pollables
   * @param detail - canonical detail recorded with each write
   * @param path - canonical guest path recorded with each write (file streams)
   * @param label - `detail` of the bookkeeping calls; default `file` for a file stream, else the last part
   *   of the write syscall's name (`stdout`)
   * @param target - host and port recorded with each write (socket streams)
   */
  constructor(ctx: HostContext, syscallId: number, sink: ByteSink | undefined, now: () => bigint, detail?: string, path?: string, label?: string, target?: StreamTarget) {
    this.#ctx = ctx;
    this.#target = target;
    this.#path = path;
    this.#id = syscallId;
    this.#sink = sink;
    this.#now = now;
    this.#detail = detail;
    this.#ids = ioIds(ctx);
    this.#label = label ?? streamLabel(ctx, syscallId, path);
  }

  /** Enter a bookkeeping call whose interface has a stream error; refused, record and fail the call. */
  #enter(id: number): void {
    const gate = this.#ctx.gate;
    gate.args.detail = this.#label;
    gate.args.path = this.#path;
    if (!gate.enter(id)) throw streamRefused(this.#ctx, id);
  }

  /** The rest of `flush`, `blocking-flush` and `check-write` once allowed: fails when the stream is closed. */
  #exitOpen(): void {
    if (this.#closed) {
      this.#ctx.gate.exit(RESULT_FAILED);
      throw new HostResultError(CLOSED);
    }
    this.#ctx.gate.exit(RESULT_OK);
  }

  /** @returns how many bytes the next write may carry */
  checkWrite(): bigint {
    this.#enter(this.#ids.checkWrite);
    this.#exitOpen();
    return MAX_WRITE_BIG;
  }

  /**
   * Implements `write`.
   * @param contents - bytes to write
   */
  write(contents: Uint8Array): void {
    if (contents.length > MAX_WRITE) throw new ForgeError('LIMIT_EXCEEDED', `a write of ${contents.length} bytes exceeds check-write`);
    if (this.#id < 0) {
      if (this.#closed) throw new HostResultError(CLOSED);
      this.#sink?.(contents);
      return;
    }
    const gate = this.#ctx.gate;
    gate.args.size = contents.length;
    gate.args.detail = this.#detail;
    gate.args.path = this.#path;
    if (this.#target !== undefined) {
      gate.args.host = this.#target.host;
      gate.args.port = this.#target.port;
    }
    if (!gate.enter(this.#id)) throw streamRefused(this.#ctx, this.#id);
    if (this.#closed) {
      // A write after the stream failed or closed still crosses the gate (recorded as failed).
      gate.exit(RESULT_FAILED);
      throw new HostResultError(CLOSED);
    }
    try {
      this.#sink?.(contents);
    } catch (e) {
      gate.exit(RESULT_FAILED, failureRecord(e));
      this.#closed = true;
      throw new HostResultError({ tag: 'last-operation-failed', val: (e instanceof IoError ? e : new IoError('IO_ERROR', 'the sink failed')).attach(this.#ctx) });
    }
    gate.exit(RESULT_OK);
  }

  /**
   * Implements `blocking-write-and-flush` (one crossing: writes are unbuffered).
   * @param contents - bytes to write and flush
   */
  blockingWriteAndFlush(contents: Uint8Array): void {
    this.write(contents);
  }

  /** Flush (writes are unbuffered). */
  flush(): void {
    this.#enter(this.#ids.flush);
    this.#exitOpen();
  }

  /** Flush and wait (writes are unbuffered). */
  blockingFlush(): void {
    this.flush();
  }

  /**
   * Implements `write-zeroes`.
   * @param len - number of zero bytes to write
   */
  writeZeroes(len: bigint): void {
    this.write(new Uint8Array(Number(len > BigInt(MAX_WRITE) ? BigInt(MAX_WRITE + 1) : len)));
  }

  /**
   * Implements `blocking-write-zeroes-and-flush`.
   * @param len - number of zero bytes to write and flush
   */
  blockingWriteZeroesAndFlush(len: bigint): void {
    this.writeZeroes(len);
  }

  /**
   * Implements `splice`.
   * @param src - stream to read from
   * @param len - most bytes to move
   * @returns bytes moved
   */
  splice(src: InputStream, len: bigint): bigint {
    const bytes = src.read(len);
    this.write(bytes);
    return BigInt(bytes.length);
  }

  /**
   * Implements `blocking-splice`.
   * @param src - stream to read from
   * @param len - most bytes to move
   * @returns bytes moved
   */
  blockingSplice(src: InputStream, len: bigint): bigint {
    return this.splice(src, len);
  }

  /**
   * Implements `subscribe`.
   * @returns a pollable, ready at once
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  subscribe(): Pollable {
    return subscribeStream(this.#ctx, this.#ids, this.#label, this.#path, this.#now);
  }

  /**
   * The guest dropped its handle: crosses the gate as `wasi:io/drop`. Nothing to free: the stream owns no
   * host resource (stdout is shared by every handle to it; a file's descriptor belongs to the descriptor).
   */
  [DISPOSE](): void {
    gateDrop(this.#ctx, this.#label, this.#path);
  }
}

function subscribeStream(ctx: HostContext, ids: IoIds, label: string, path: string | undefined, now: () => bigint, target?: StreamTarget): Pollable {
  const gate = ctx.gate;
  gate.args.detail = label;
  gate.args.path = path;
  ctx.enterOrTrap(ids.subscribe);
  gate.exit(RESULT_OK);
  const readable = target?.readable;
  return readable === undefined ? new Pollable(now, -1n, sleep, ctx, label) : new Pollable(now, -1n, target!.sleeper ?? sleep, ctx, label, readable);
}

/**
 * `wasi:io/streams.input-stream`. Each read crosses the gate under the stream's syscall with `size` = the
 * bytes asked for; the bytes read go to the record (they cannot be recomputed). `subscribe`
 * (`wasi:io/subscribe`, a trap when refused) and the drop (`wasi:io/drop`) cross it with the stream's label
 * as `detail`.
 */
export class InputStream {
  readonly #ctx: HostContext;
  readonly #id: number;
  readonly #source: ByteSource | undefined;
  readonly #detail: string | undefined;
  readonly #path: string | undefined;
  readonly #now: () => bigint;
  readonly #ids: IoIds;
  readonly #label: string;
  readonly #target: StreamTarget | undefined;
  #closed = false;

  /**
   * @param ctx - the host context
   * @param syscallId - interned syscall of reads, or -1 for a stream over bytes already recorded (an HTTP
   *   response body)
   * @param source - where bytes come from (always at end when undefined)
   * @param now - monotonic clock for pollables
   * @param detail - canonical detail recorded with each read
   * @param path - canonical guest path recorded with each read (file streams)
   * @param label - `detail` of the bookkeeping calls; default `file` for a file stream, else the last part
   *   of the read syscall's name (`stdin`)
   * @param target - host and port recorded with each read, and how to wait for bytes (socket streams)
   */
  constructor(ctx: HostContext, syscallId: number, source: ByteSource | undefined, now: () => bigint, detail?: string, path?: string, label?: string, target?: StreamTarget) {
    this.#ctx = ctx;
    this.#target = target;
    this.#path = path;
    this.#id = syscallId;
    this.#source = source;
    this.#now = now;
    this.#detail = detail;
    this.#ids = ioIds(ctx);
    this.#label = label ?? streamLabel(ctx, syscallId, path);
  }

  /**
   * Implements `read`.
   * @param len - most bytes to read
   * @returns the bytes (possibly empty)
   */
  read(len: bigint): Uint8Array {
    const max = len > BigInt(MAX_READ) ? MAX_READ : Number(len);
    if (this.#id < 0) {
      if (this.#closed) throw new HostResultError(CLOSED);
      const bytes = this.#source === undefined ? null : this.#source(max);
      if (bytes === null) {
        this.#closed = true;
        throw new HostResultError(CLOSED);
      }
      return bytes.length > max ? bytes.subarray(0, max) : bytes;
    }
    const gate = this.#ctx.gate;
    gate.args.size = max;
    gate.args.detail = this.#detail;
    gate.args.path = this.#path;
    if (this.#target !== undefined) {
      gate.args.host = this.#target.host;
      gate.args.port = this.#target.port;
    }
    if (!gate.enter(this.#id)) throw streamRefused(this.#ctx, this.#id);
    if (this.#closed) {
      // A read after the end (or a failure) still crosses the gate (recorded as failed).
      gate.exit(RESULT_FAILED);
      throw new HostResultError(CLOSED);
    }
    let bytes: Uint8Array | null;
    try {
      bytes = this.#source === undefined ? null : this.#source(max);
    } catch (e) {
      gate.exit(RESULT_FAILED, failureRecord(e));
      this.#closed = true;
      throw new HostResultError({ tag: 'last-operation-failed', val: (e instanceof IoError ? e : new IoError('IO_ERROR', 'the source failed')).attach(this.#ctx) });
    }
    if (bytes === null) {
      this.#closed = true;
      gate.exit(RESULT_FAILED);
      throw new HostResultError(CLOSED);
    }
    if (bytes.length > max) bytes = bytes.subarray(0, max);
    gate.exit(RESULT_OK, this.#target?.recomputed === true ? undefined : bytes);
    return bytes;
  }

  /**
   * Implements `blocking-read`: for a stream over the outside world (a socket), waits until a read would
   * return something (not during a replay: the record answers), then reads.
   * @param len - most bytes to read
   * @returns the bytes
   * @throws ForgeError `CONTAINER_TERMINATED` (a trap) when the container is terminated while waiting
   */
  blockingRead(len: bigint): Uint8Array {
    const readable = this.#target?.readable;
    if (readable !== undefined && !this.#closed && !this.#ctx.replaying && len > 0n) waitProbe(readable, this.#target!.sleeper ?? sleep);
    return this.read(len);
  }

  /**
   * Implements `skip`.
   * @param len - most bytes to skip
   * @returns bytes skipped
   */
  skip(len: bigint): bigint {
    return BigInt(this.read(len).length);
  }

  /**
   * Implements `blocking-skip`.
   * @param len - most bytes to skip
   * @returns bytes skipped
   */
  blockingSkip(len: bigint): bigint {
    return BigInt(this.blockingRead(len).length);
  }

  /**
   * Implements `subscribe`.
   * @returns a pollable, ready at once
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  subscribe(): Pollable {
    return subscribeStream(this.#ctx, this.#ids, this.#label, this.#path, this.#now, this.#target);
  }

  /** The guest dropped its handle: crosses the gate as `wasi:io/drop`. Nothing to free (as for output streams). */
  [DISPOSE](): void {
    gateDrop(this.#ctx, this.#label, this.#path);
  }
}

/**
 * A byte source over a fixed buffer (stdin given as bytes).
 * @param bytes - the whole input
 * @returns a source that hands it out in order, then reports end of stream
 */
export function bufferSource(bytes: Uint8Array): ByteSource {
  let at = 0;
  return (max) => {
    if (at >= bytes.length) return null;
    const out = bytes.subarray(at, Math.min(bytes.length, at + max));
    at += out.length;
    return out;
  };
}
