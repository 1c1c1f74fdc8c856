import { ForgeError, isErrorCode, isForgeError, type ErrorCode } from '@forgeone/common';
import type { SnapshotState } from '@forgeone/observer';
import type { SharedRing } from '../gate/index.js';

/** Index in a container's meter array: ms since the time base when the current guest run started, or -1. */
export const METER_GUEST_SINCE = 0;
/** Index in a container's meter array: ms spent running guest code so far (whole runs, floored). */
export const METER_GUEST_TOTAL = 1;
/** Index in a container's meter array: bytes of output accepted by the container's sinks. */
export const METER_OUTPUT_BYTES = 2;
/** Index in a container's meter array: linear memory pages last reported by the runner. */
export const METER_MEMORY_PAGES = 3;
/** Index in a container's meter array: guest runs started (entries and returns from host calls). */
export const METER_GUEST_RUNS = 4;
/** Length of a container's meter array in 32-bit slots. */
export const METER_SLOTS = 8;

/**
 * Allocate a container's meter array: 32-bit slots in shared memory the worker writes (guest run start,
 * guest time, output bytes) and the main-thread watchdog reads.
 * @returns a meter array with no guest run in progress
 */
export function createMeter(): Int32Array {
  const meter = new Int32Array(new SharedArrayBuffer(METER_SLOTS * 4));
  meter[METER_GUEST_SINCE] = -1;
  return meter;
}

/** A ForgeError as it crosses a thread: code, message and plain details. */
export interface WireError {
  /** The stable code. */
  readonly code: ErrorCode;
  /** The message. */
  readonly message: string;
  /** Structured-cloneable details. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * Turn anything thrown into a {@link WireError}, classifying WebAssembly errors by kind.
 * @param error - anything caught
 * @param fallback - the code for errors that are not recognised; default `CONTAINER_FAILED`
 * @returns the wire form
 */
export function toWireError(error: unknown, fallback: ErrorCode = 'CONTAINER_FAILED'): WireError {
  if (isForgeError(error)) {
    let details: Readonly<Record<string, unknown>> | undefined;
    if (error.details !== undefined) {
      try {
        details = structuredClone(error.details);
      } catch {
        details = undefined;
      }
    }
    return details === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, details };
  }
  if (error instanceof WebAssembly.RuntimeError) return { code: 'WASM_TRAP', message: `guest trapped: ${error.message}`, details: { trap: error.message } };
  if (error instanceof WebAssembly.CompileError) return { code: 'WASM_INVALID', message: error.message };
  if (error instanceof WebAssembly.LinkError) return { code: 'WASM_LINK_ERROR', message: error.message };
  if (error instanceof RangeError) {
    if (/Maximum call stack size exceeded/.test(error.message)) {
      return { code: 'WASM_TRAP', message: `guest trapped: stack overflow (${error.message})`, details: { trap: 'stack overflow' } };
    }
    if (/WebAssembly\.Memory|could not allocate memory|Out of memory/i.test(error.message)) {
      return { code: 'SANDBOX_MEMORY_EXCEEDED', message: `memory could not be allocated: ${error.message}` };
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: fallback, message };
}

/**
 * Rebuild a ForgeError from its wire form.
 * @param wire - the wire form (codes not in the table become `CONTAINER_FAILED`)
 * @returns the error
 */
export function fromWireError(wire: WireError): ForgeError {
  const code = typeof wire.code === 'string' && isErrorCode(wire.code) ? wire.code : 'CONTAINER_FAILED';
  return wire.details === undefined ? new ForgeError(code, String(wire.message)) : new ForgeError(code, String(wire.message), { details: wire.details });
}

/** Messages from the main thread to a sandbox worker. */
export type ToWorker =
  | {
      readonly type: 'start';
      readonly id: string;
      readonly runner: string;
      readonly data: unknown;
      readonly policy: unknown;
      readonly limits: unknown;
      readonly control: Int32Array;
      readonly meter: Int32Array;
      readonly timeBase: number;
      readonly clockBuffer: SharedArrayBuffer | undefined;
      readonly bridgePort: MessagePortLike;
      readonly bridgeSignal: Int32Array;
      readonly policyPort: MessagePortLike;
      /** Calls per record block, or 0 when the spec wants no records. */
      readonly recordBlockSize: number;
      /** A verified snapshot to restore before any call (the spec's `snapshot`), or undefined. */
      readonly snapshot?: SnapshotState;
      /** The sequence number of the container's first call (the snapshot's trace position, or 0). */
      readonly startSeq?: number;
    }
  | { readonly type: 'call'; readonly seq: number; readonly name: string; readonly input: unknown }
  /** Capture the serving instance's state between two calls; answered by `snapshotResult` with the same `seq`. */
  | { readonly type: 'snapshot'; readonly seq: number }
  | { readonly type: 'close' };

/** A block of records posted by the worker (its three arrays share one transferred buffer). */
export interface PostedBlock {
  /** Calls in the block. */
  readonly count: number;
  /** The fields (`RawBlock.fields`). */
  readonly fields: Float64Array;
  /** The arena. */
  readonly arena: Uint8Array;
  /** Rule indexes (`RawBlock.ruleIds`). */
  readonly ruleIds: Int32Array;
  /** Hand-over number (`RawBlock.handOver`): its place among the blocks taken from the shared slots. */
  readonly handOver: number;
}

/** Messages from a sandbox worker to the main thread. */
export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'serving' }
  | { readonly type: 'result'; readonly value: unknown }
  | { readonly type: 'failed'; readonly error: WireError }
  | { readonly type: 'callResult'; readonly seq: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'callResult'; readonly seq: number; readonly ok: false; readonly error: WireError }
  /** The answer to a `snapshot` request: the state (memory buffers transferred) and the next call's sequence number. */
  | { readonly type: 'snapshotResult'; readonly seq: number; readonly ok: true; readonly state: SnapshotState; readonly next: number }
  | { readonly type: 'snapshotResult'; readonly seq: number; readonly ok: false; readonly error: WireError }
  | { readonly type: 'output'; readonly stream: 'stdout' | 'stderr'; readonly bytes: Uint8Array }
  /**
   * Call records. `names` lists syscalls the worker interned beyond the catalogue since the last such
   * message, `rules` the recorder's new rule names (blocks carry rule indexes, not strings: 256 strings cost
   * the worker tens of microseconds to post). Blocks normally stay in the shared ring's slots and this
   * message only asks the kernel to drain them (requests coalesce; the kernel drains before every message of
   * the worker). `block` is a copy the worker posted because no slot was free.
   */
  | { readonly type: 'records'; readonly block?: PostedBlock; readonly names: readonly string[]; readonly rules: readonly string[] }
  | { readonly type: 'ring'; readonly ring: SharedRing };

/** Bridge request, worker to main. */
export interface BridgeRequest {
  /** Request number. */
  readonly seq: number;
  /** Handler name. */
  readonly method: string;
  /** Structured-cloneable payload. */
  readonly payload: unknown;
}

/** Bridge response, main to worker. */
export type BridgeResponse =
  | { readonly seq: number; readonly ok: true; readonly value: unknown }
  | { readonly seq: number; readonly ok: false; readonly error: WireError };

/** The part of a MessagePort the protocol types mention (keeps this module free of node imports). */
export interface MessagePortLike {
  /**
   * Post a message.
   * @param value - the message
   */
  postMessage(value: unknown): void;
}

/**
 * The current time in ms relative to a time base, comparable across threads.
 * @param base - the time base (ms since the epoch)
 * @returns ms since `base`
 */
export function sinceBase(base: number): number {
  return performance.timeOrigin + performance.now() - base;
}
