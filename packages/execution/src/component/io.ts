import { ForgeError } from '@forgeone/common';
import { HostResultError, RESULT_FAILED, RESULT_OK, RESULT_REFUSED, refusalBytes, type HostContext } from './host.js';

/** `wasi:io/error.error`: the error resource a stream's `last-operation-failed` carries. */
export class IoError {
  /** A ForgeOne error code (`POLICY_DENIED`, `IO_ERROR`, ...). */
  readonly code: string;
  /** What happened. */
  readonly message: string;
  /** The `wasi:filesystem` error code for `filesystem-error-code`, if this came from a file. */
  readonly filesystemCode: string | undefined;

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

  /** @returns `code: message`, for the guest's diagnostics */
  toDebugString(): string {
    return `${this.code}: ${this.message}`;
  }
}

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
 * a clock subscription, which is ready at its monotonic deadline.
 */
export class Pollable {
  /** Monotonic deadline in ns, or -1 for ready at once. */
  readonly deadline: bigint;
  readonly #now: () => bigint;
  readonly #sleep: (ms: number) => void;

  /**
   * @param now - the monotonic clock (ns)
   * @param deadline - the deadline (ns), or -1n for always ready
   * @param sleeper - how to wait (the adapter waits on the container's control array, so termination wakes it)
   */
  constructor(now: () => bigint, deadline = -1n, sleeper: (ms: number) => void = sleep) {
    this.#now = now;
    this.deadline = deadline;
    this.#sleep = sleeper;
  }

  /** @returns whether the pollable is ready */
  ready(): boolean {
    return this.deadline < 0n || this.#now() >= this.deadline;
  }

  /** Wait until ready. */
  block(): void {
    waitUntil(this.deadline, this.#now, this.#sleep);
  }

  /**
   * How this pollable waits.
   * @internal
   */
  get sleeper(): (ms: number) => void {
    return this.#sleep;
  }
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
 * @param list - pollables
 * @param now - the monotonic clock (ns)
 * @returns indices of the ready ones
 * @throws ForgeError `INVALID_ARGUMENT` (trap) for an empty list, as WASI requires
 */
export function pollList(list: readonly Pollable[], now: () => bigint): Uint32Array {
  if (list.length === 0) throw new ForgeError('INVALID_ARGUMENT', 'poll on an empty list');
  for (;;) {
    let n = 0;
    for (const p of list) if (p.ready()) n++;
    if (n > 0) {
      const out = new Uint32Array(n);
      let j = 0;
      for (let i = 0; i < list.length; i++) if (list[i]!.ready()) out[j++] = i;
      return out;
    }
    // None is ready, so every one is a clock subscription with a deadline: sleep until the earliest.
    let first = list[0]!;
    for (const p of list) if (p.deadline < first.deadline) first = p;
    waitUntil(first.deadline, now, first.sleeper);
  }
}

/** `closed` of `wasi:io/streams.stream-error`. */
const CLOSED = Object.freeze({ tag: 'closed' });

/** Where an output stream's bytes go; may throw an {@link IoError} to fail the write with its code. */
export type ByteSink = (bytes: Uint8Array) => void;

/** Where an input stream's bytes come from: the next at most `max` bytes, or null at end of stream; may throw an {@link IoError}. */
export type ByteSource = (max: number) => Uint8Array | null;

/** Most bytes a single write may carry (what `check-write` grants). */
export const MAX_WRITE = 1 << 20;
const MAX_WRITE_BIG = BigInt(MAX_WRITE);
/** Most bytes a single read returns. */
export const MAX_READ = 1 << 20;

/**
 * `wasi:io/streams.output-stream`. Each write crosses the gate under the stream's syscall (`wasi:cli/stdout`
 * for stdout) with `size`; `check-write`, `flush` and `subscribe` are bookkeeping of the guest's own handle
 * and do not. A refused write fails with `last-operation-failed` carrying an {@link IoError} whose code is
 * the refusal code.
 */
export class OutputStream {
  readonly #ctx: HostContext;
  readonly #id: number;
  readonly #sink: ByteSink | undefined;
  readonly #detail: string | undefined;
  readonly #path: string | undefined;
  readonly #now: () => bigint;
  #closed = false;

  /**
   * @param ctx - the host context
   * @param syscallId - interned syscall of writes, or -1 for a stream into host memory that was already
   *   decided and recorded as a whole (an HTTP request body)
   * @param sink - where bytes go (dropped when undefined)
   * @param now - monotonic clock for pollables
   * @param detail - canonical detail recorded with each write
   * @param path - canonical guest path recorded with each write (file streams)
   */
  constructor(ctx: HostContext, syscallId: number, sink: ByteSink | undefined, now: () => bigint, detail?: string, path?: string) {
    this.#ctx = ctx;
    this.#path = path;
    this.#id = syscallId;
    this.#sink = sink;
    this.#now = now;
    this.#detail = detail;
  }

  /** @returns how many bytes the next write may carry */
  checkWrite(): bigint {
    if (this.#closed) throw new HostResultError(CLOSED);
    return MAX_WRITE_BIG;
  }

  /**
   * Implements `write`.
   * @param contents - bytes to write
   */
  write(contents: Uint8Array): void {
    if (this.#closed) throw new HostResultError(CLOSED);
    if (contents.length > MAX_WRITE) throw new ForgeError('LIMIT_EXCEEDED', `a write of ${contents.length} bytes exceeds check-write`);
    if (this.#id < 0) {
      this.#sink?.(contents);
      return;
    }
    const gate = this.#ctx.gate;
    gate.args.size = contents.length;
    gate.args.detail = this.#detail;
    gate.args.path = this.#path;
    if (!gate.enter(this.#id)) {
      const failed = new IoError(this.#ctx.refusalCode(), `${gate.syscalls.name(this.#id)} refused`);
      gate.exit(RESULT_REFUSED, refusalBytes(failed.code));
      throw new HostResultError({ tag: 'last-operation-failed', val: failed });
    }
    try {
      this.#sink?.(contents);
    } catch (e) {
      gate.exit(RESULT_FAILED);
      this.#closed = true;
      throw new HostResultError({ tag: 'last-operation-failed', val: e instanceof IoError ? e : new IoError('IO_ERROR', 'the sink failed') });
    }
    gate.exit(RESULT_OK);
  }

  /**
   * Implements `blocking-write-and-flush`.
   * @param contents - bytes to write and flush
   */
  blockingWriteAndFlush(contents: Uint8Array): void {
    this.write(contents);
  }

  /** Flush (writes are unbuffered). */
  flush(): void {
    if (this.#closed) throw new HostResultError(CLOSED);
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

  /** @returns a pollable, ready at once */
  subscribe(): Pollable {
    return new Pollable(this.#now);
  }
}

/**
 * `wasi:io/streams.input-stream`. Each read crosses the gate under the stream's syscall with `size` = the
 * bytes asked for; the bytes read go to the record (they cannot be recomputed).
 */
export class InputStream {
  readonly #ctx: HostContext;
  readonly #id: number;
  readonly #source: ByteSource | undefined;
  readonly #detail: string | undefined;
  readonly #path: string | undefined;
  readonly #now: () => bigint;
  #closed = false;

  /**
   * @param ctx - the host context
   * @param syscallId - interned syscall of reads, or -1 for a stream over bytes already recorded (an HTTP
   *   response body)
   * @param source - where bytes come from (always at end when undefined)
   * @param now - monotonic clock for pollables
   * @param detail - canonical detail recorded with each read
   * @param path - canonical guest path recorded with each read (file streams)
   */
  constructor(ctx: HostContext, syscallId: number, source: ByteSource | undefined, now: () => bigint, detail?: string, path?: string) {
    this.#ctx = ctx;
    this.#path = path;
    this.#id = syscallId;
    this.#source = source;
    this.#now = now;
    this.#detail = detail;
  }

  /**
   * Implements `read`.
   * @param len - most bytes to read
   * @returns the bytes (possibly empty)
   */
  read(len: bigint): Uint8Array {
    if (this.#closed) throw new HostResultError(CLOSED);
    const max = len > BigInt(MAX_READ) ? MAX_READ : Number(len);
    if (this.#id < 0) {
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
    if (!gate.enter(this.#id)) {
      const failed = new IoError(this.#ctx.refusalCode(), `${gate.syscalls.name(this.#id)} refused`);
      gate.exit(RESULT_REFUSED, refusalBytes(failed.code));
      throw new HostResultError({ tag: 'last-operation-failed', val: failed });
    }
    let bytes: Uint8Array | null;
    try {
      bytes = this.#source === undefined ? null : this.#source(max);
    } catch (e) {
      gate.exit(RESULT_FAILED);
      this.#closed = true;
      throw new HostResultError({ tag: 'last-operation-failed', val: e instanceof IoError ? e : new IoError('IO_ERROR', 'the source failed') });
    }
    if (bytes === null) {
      this.#closed = true;
      gate.exit(RESULT_FAILED);
      throw new HostResultError(CLOSED);
    }
    if (bytes.length > max) bytes = bytes.subarray(0, max);
    gate.exit(RESULT_OK, bytes);
    return bytes;
  }

  /**
   * Implements `blocking-read`.
   * @param len - most bytes to read
   * @returns the bytes
   */
  blockingRead(len: bigint): Uint8Array {
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
    return this.skip(len);
  }

  /** @returns a pollable, ready at once */
  subscribe(): Pollable {
    return new Pollable(this.#now);
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
