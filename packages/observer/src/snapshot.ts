// The signed snapshot file (docs/snapshots.md of @forgeone/execution): what a container's instances held
// between two calls (linear memories and globals) and where its execution DNA stood, signed by the kernel
// key. This module knows nothing of WebAssembly: it writes and reads the file; capturing and restoring
// instances is the execution layer's `Snapshotter`.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { ForgeError, canonicalJson, canonicalJsonBytes, decodeUtf8Strict, formatFieldPath, systemClock, toHex, utf8, type Clock } from '@forgeone/common';
import type { CryptoProvider, SigningKey } from '@forgeone/crypto';
import { z } from 'zod';
import { trustedKeyMap, type TrustedKeys } from './chain.js';
import { TRACE_ID, type TraceCheckpointInfo } from './trace.js';

/** The 8 bytes every snapshot file starts with: ASCII `FGSNAP1` and a newline. */
export const SNAPSHOT_MAGIC: Uint8Array = utf8('FGSNAP1\n');
/** The `type` of every snapshot header. */
export const SNAPSHOT_TYPE = 'forgeone.snapshot';
/** The header version this library reads and writes. */
export const SNAPSHOT_VERSION = 1;
/** Domain-separation prefix of the bytes a snapshot signature covers (hashed with the header and memory digests). */
export const SNAPSHOT_SIGNING_PREFIX = 'forgeone/snapshot/v1\0';
/** Size of one WebAssembly page in bytes: every captured memory is a whole number of pages. */
export const SNAPSHOT_PAGE_SIZE = 65536;
/** The largest number of pages a 32-bit memory can have. */
export const SNAPSHOT_MAX_PAGES = 65536;
/** The value types a snapshot can hold (v128 and references cannot be captured). */
export const SNAPSHOT_VALUE_TYPES = Object.freeze(['i32', 'i64', 'f32', 'f64'] as const);

/** A value type a snapshot can hold. */
export type SnapshotValueType = (typeof SNAPSHOT_VALUE_TYPES)[number];

const SIGNATURE_BYTES = 64;
const LENGTH_BYTES = 4;
const PREFIX_BYTES = SNAPSHOT_MAGIC.length + LENGTH_BYTES;

/** Size and count bounds, checked before anything they bound is read, so a hostile file cannot exhaust memory. */
export interface SnapshotLimits {
  /** Header bytes (canonical JSON). Default 1 MiB. */
  readonly maxHeaderBytes: number;
  /** Instances (core instances of a component; 1 for a module). Default 64. */
  readonly maxInstances: number;
  /** Memories across all instances. Default 64. */
  readonly maxMemories: number;
  /** Globals across all instances. Default 65536. */
  readonly maxGlobals: number;
  /** Memory bytes across all instances. Default 4 GiB (one full 32-bit memory). */
  readonly maxMemoryBytes: number;
}

/** The default {@link SnapshotLimits}. */
export const DEFAULT_SNAPSHOT_LIMITS: SnapshotLimits = Object.freeze({
  maxHeaderBytes: 1024 * 1024,
  maxInstances: 64,
  maxMemories: 64,
  maxGlobals: 65536,
  maxMemoryBytes: SNAPSHOT_MAX_PAGES * SNAPSHOT_PAGE_SIZE,
});

/** One linear memory of an instance, as captured. */
export interface SnapshotMemory {
  /** Index in the module's memory index space (imported memories first; they are never captured). */
  readonly index: number;
  /** Size in 64 KiB pages when captured. */
  readonly pages: number;
  /** The memory's contents: exactly `pages × 65536` bytes. */
  readonly bytes: Uint8Array;
}

/** One global of an instance, as captured. */
export interface SnapshotGlobal {
  /** Index in the module's global index space (imported globals first; they are never captured). */
  readonly index: number;
  /** The value type. */
  readonly type: SnapshotValueType;
  /** Whether the global is mutable (restore sets mutable globals and checks immutable ones). */
  readonly mutable: boolean;
  /** The value in its exact text form ({@link encodeGlobalValue}). */
  readonly value: string;
}

/** The state of one core instance. */
export interface SnapshotInstance {
  /** SHA3-256 (hex) of the core module's original bytes, before any rewriting. */
  readonly moduleHash: string;
  /** Its defined memories, by increasing index. */
  readonly memories: readonly SnapshotMemory[];
  /** Its defined globals, by increasing index. */
  readonly globals: readonly SnapshotGlobal[];
}

/** Where a container's execution DNA stood when the snapshot was taken. */
export interface SnapshotTracePosition {
  /** The trace id. */
  readonly traceId: string;
  /** The sequence number of the next call: every call below it happened before the snapshot. */
  readonly seq: number;
  /** The hash of the trace's last sealed block (or its header hash), hex, when known. */
  readonly blockHash?: string;
}

/** What a snapshot holds, as captured (before it is written) or as read back (after it is verified). */
export interface SnapshotState {
  /** `module` (one core instance) or `component` (its core instances in creation order). */
  readonly kind: 'module' | 'component';
  /** SHA3-256 (hex) of the original module or component bytes: a snapshot restores only into the same. */
  readonly moduleHash: string;
  /** The container the state was taken from. */
  readonly container: { readonly id: string };
  /** The trace position ({@link tracePositionOf}), when the container is traced. */
  readonly trace?: SnapshotTracePosition;
  /** The instances' states; for a module exactly one, whose module hash is {@link SnapshotState.moduleHash}. */
  readonly instances: readonly SnapshotInstance[];
}

/** A snapshot read back and verified: its state, when and by whom it was signed, and the header as stored. */
export interface Snapshot extends SnapshotState {
  /** When it was written, ms since the epoch. */
  readonly createdAt: number;
  /** Key id of the key that signed it. */
  readonly keyId: string;
  /** The header as stored (canonical JSON, parsed). */
  readonly header: SnapshotHeader;
}

/** What a capture needs to know beyond the instances. */
export interface SnapshotContext {
  /** The container id. */
  readonly containerId: string;
  /** The trace position, when the container is traced. */
  readonly trace?: SnapshotTracePosition;
}

/**
 * Captures and restores the state of a container's instances between calls. The observer defines the
 * contract; the execution layer implements it for core modules and components.
 * @typeParam Target - what holds the instances (the execution layer's snapshot target)
 */
export interface Snapshotter<Target> {
  /**
   * Capture the target's memories and globals. Call it only between calls: a running call's stack is
   * never captured.
   * @param target - the instances
   * @param context - container id and trace position
   * @returns the state, to write with {@link writeSnapshot}
   * @throws ForgeError `SNAPSHOT_UNSUPPORTED` when the target holds state that cannot be captured
   */
  capture(target: Target, context: SnapshotContext): SnapshotState;
  /**
   * Restore a state into fresh instances of the same module.
   * @param target - the instances (not yet called)
   * @param state - a state, usually from {@link readSnapshot}
   * @throws ForgeError `SNAPSHOT_MODULE_MISMATCH` for another module, `SNAPSHOT_UNSUPPORTED` when the state
   *   cannot be restored into the target
   */
  restore(target: Target, state: SnapshotState): void;
}

const HEX32 = /^[0-9a-f]{64}$/;
const INT = /^-?(0|[1-9][0-9]*)$/;
const hash = z.string().regex(HEX32, 'must be 64 lowercase hex digits');
const natural = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/**
 * Whether a text is the exact form of a value of a type (see {@link encodeGlobalValue}).
 * @param type - the value type
 * @param text - the candidate
 * @returns true when `text` is canonical for `type`
 */
function isValueText(type: SnapshotValueType, text: string): boolean {
  switch (type) {
    case 'i32': {
      if (text.length > 11 || !INT.test(text) || text === '-0') return false;
      const n = Number(text);
      return n >= I32_MIN && n <= I32_MAX;
    }
    case 'i64': {
      if (text.length > 20 || !INT.test(text) || text === '-0') return false;
      const n = BigInt(text);
      return n >= I64_MIN && n <= I64_MAX;
    }
    case 'f32':
      return /^[0-9a-f]{8}$/.test(text);
    case 'f64':
      return /^[0-9a-f]{16}$/.test(text);
  }
}

const MemorySchema = z.strictObject({
  index: z.number().int().min(0).max(0xffff_ffff),
  pages: z.number().int().min(0).max(SNAPSHOT_MAX_PAGES),
  byteLength: natural,
  sha3: hash,
});

const GlobalSchema = z.strictObject({
  index: z.number().int().min(0).max(0xffff_ffff),
  type: z.enum(SNAPSHOT_VALUE_TYPES),
  mutable: z.boolean(),
  value: z.string().max(20),
});

const InstanceSchema = z.strictObject({
  moduleHash: hash,
  memories: z.array(MemorySchema),
  globals: z.array(GlobalSchema),
});

/** Schema of a snapshot header (structure only; sizes, orders and values are checked by {@link readSnapshot}). */
export const SnapshotHeaderSchema = z.strictObject({
  type: z.literal(SNAPSHOT_TYPE),
  version: z.literal(SNAPSHOT_VERSION),
  kind: z.enum(['module', 'component']),
  moduleHash: hash,
  createdAt: natural,
  keyId: hash,
  container: z.strictObject({ id: z.string().min(1).max(256) }),
  trace: z
    .strictObject({
      traceId: z.string().regex(TRACE_ID, 'is not a trace id'),
      seq: natural,
      blockHash: hash.optional(),
    })
    .optional(),
  instances: z.array(InstanceSchema).min(1),
});

/** A snapshot header as stored. */
export type SnapshotHeader = z.infer<typeof SnapshotHeaderSchema>;

/**
 * The exact text form of a global's value: `i32` and `i64` as signed decimal integers, `f32` and `f64` as
 * the lowercase hex of their IEEE 754 bits (big-endian), so every value (−0, infinities, NaN) survives.
 * @param type - the value type
 * @param value - a number (`i32`, `f32`, `f64`) or a bigint (`i64`)
 * @returns the text form
 * @throws ForgeError `INVALID_ARGUMENT` when the value does not fit the type
 * @example
 * ```ts
 * encodeGlobalValue('i64', -5n); // '-5'
 * encodeGlobalValue('f64', 1.5); // '3ff8000000000000'
 * ```
 */
export function encodeGlobalValue(type: SnapshotValueType, value: number | bigint): string {
  switch (type) {
    case 'i32':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < I32_MIN || value > 0xffff_ffff) break;
      return String(value | 0);
    case 'i64':
      if (typeof value !== 'bigint' || value < I64_MIN || value > 2n ** 64n - 1n) break;
      return BigInt.asIntN(64, value).toString();
    case 'f32': {
      if (typeof value !== 'number') break;
      const v = new DataView(new ArrayBuffer(4));
      v.setFloat32(0, value);
      return v.getUint32(0).toString(16).padStart(8, '0');
    }
    case 'f64': {
      if (typeof value !== 'number') break;
      const v = new DataView(new ArrayBuffer(8));
      v.setFloat64(0, value);
      return v.getBigUint64(0).toString(16).padStart(16, '0');
    }
    default:
      throw new ForgeError('INVALID_ARGUMENT', `unknown value type ${JSON.stringify(type)}`);
  }
  throw new ForgeError('INVALID_ARGUMENT', `${typeof value} ${String(value)} is not an ${type} value`, { details: { type } });
}

/**
 * Decode a global's value from its text form ({@link encodeGlobalValue}).
 * @param type - the value type
 * @param text - the text form
 * @returns a number (`i32`, `f32`, `f64`) or a bigint (`i64`)
 * @throws ForgeError `INVALID_ARGUMENT` when the text is not the exact form of a value of the type
 */
export function decodeGlobalValue(type: SnapshotValueType, text: string): number | bigint {
  if (typeof text !== 'string' || !(SNAPSHOT_VALUE_TYPES as readonly string[]).includes(type) || !isValueText(type, text)) {
    throw new ForgeError('INVALID_ARGUMENT', `${JSON.stringify(text)} is not the text form of an ${String(type)} value`, { details: { type } });
  }
  switch (type) {
    case 'i32':
      return Number(text);
    case 'i64':
      return BigInt(text);
    case 'f32': {
      const v = new DataView(new ArrayBuffer(4));
      v.setUint32(0, Number.parseInt(text, 16));
      return v.getFloat32(0);
    }
    case 'f64': {
      const v = new DataView(new ArrayBuffer(8));
      v.setBigUint64(0, BigInt(`0x${text}`));
      return v.getFloat64(0);
    }
  }
}

/**
 * The trace position of a snapshot taken right after a checkpoint: write `writer.checkpoint('snapshot')`
 * first, so the block hash covers every call made before the snapshot.
 * @param checkpoint - the checkpoint (`TraceWriter.checkpoint`)
 * @param firstSeq - the trace's first sequence number (its header's `restoredFrom.seq`; default 0)
 * @returns the position: trace id, the next call's sequence number, the last block's hash
 */
export function tracePositionOf(checkpoint: TraceCheckpointInfo, firstSeq = 0): SnapshotTracePosition {
  return { traceId: checkpoint.id, seq: firstSeq + checkpoint.records, blockHash: checkpoint.hash };
}

function resolveLimits(limits: Partial<SnapshotLimits> | undefined): SnapshotLimits {
  const out = { ...DEFAULT_SNAPSHOT_LIMITS, ...limits };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new ForgeError('INVALID_ARGUMENT', `snapshot limit ${k} must be a non-negative integer, got ${String(v)}`);
  }
  return out;
}

function invalid(reason: string, message: string, details: Record<string, unknown> = {}): ForgeError {
  return new ForgeError('SNAPSHOT_INVALID', `invalid snapshot: ${message}`, { details: { reason, ...details } });
}

/**
 * Check what the schema cannot: counts against limits, sizes against pages, orders, value forms, the
 * module kind's shape. Returns a problem and the field it concerns, or null.
 */
function checkHeader(h: SnapshotHeader, limits: SnapshotLimits): { path: string; message: string; reason: string } | null {
  if (h.instances.length > limits.maxInstances) return { path: 'instances', message: `${h.instances.length} instances, the limit is ${limits.maxInstances}`, reason: 'limit' };
  if (h.kind === 'module') {
    if (h.instances.length !== 1) return { path: 'instances', message: 'a module snapshot holds exactly one instance', reason: 'header' };
    if (h.instances[0]!.moduleHash !== h.moduleHash) return { path: 'instances[0].moduleHash', message: 'differs from moduleHash', reason: 'header' };
  }
  let memories = 0;
  let globals = 0;
  let bytes = 0;
  for (let i = 0; i < h.instances.length; i++) {
    const inst = h.instances[i]!;
    memories += inst.memories.length;
    globals += inst.globals.length;
    if (memories > limits.maxMemories) return { path: `instances[${i}].memories`, message: `more than ${limits.maxMemories} memories`, reason: 'limit' };
    if (globals > limits.maxGlobals) return { path: `instances[${i}].globals`, message: `more than ${limits.maxGlobals} globals`, reason: 'limit' };
    for (let m = 0; m < inst.memories.length; m++) {
      const mem = inst.memories[m]!;
      const at = `instances[${i}].memories[${m}]`;
      if (m > 0 && mem.index <= inst.memories[m - 1]!.index) return { path: `${at}.index`, message: 'indexes must increase', reason: 'header' };
      if (mem.byteLength !== mem.pages * SNAPSHOT_PAGE_SIZE) return { path: `${at}.byteLength`, message: `is not pages × ${SNAPSHOT_PAGE_SIZE}`, reason: 'header' };
      bytes += mem.byteLength;
      if (bytes > limits.maxMemoryBytes) return { path: `${at}.byteLength`, message: `memories exceed ${limits.maxMemoryBytes} bytes in total`, reason: 'limit' };
    }
    for (let g = 0; g < inst.globals.length; g++) {
      const gl = inst.globals[g]!;
      const at = `instances[${i}].globals[${g}]`;
      if (g > 0 && gl.index <= inst.globals[g - 1]!.index) return { path: `${at}.index`, message: 'indexes must increase', reason: 'header' };
      if (!isValueText(gl.type, gl.value)) return { path: `${at}.value`, message: `is not the text form of an ${gl.type} value`, reason: 'header' };
    }
  }
  return null;
}

/** An array field of untrusted input, or an empty list when it is not an array (the schema then names it). */
function listOf<T>(value: readonly T[] | undefined): readonly T[] {
  return Array.isArray(value) ? value : [];
}

function positionOf(t: { traceId: string; seq: number; blockHash?: string | undefined }): SnapshotTracePosition {
  return t.blockHash === undefined ? { traceId: t.traceId, seq: t.seq } : { traceId: t.traceId, seq: t.seq, blockHash: t.blockHash };
}

function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** The digest a snapshot signature covers: SHA3-256( prefix ‖ u32 header length ‖ header ‖ memory digests ). */
function signedDigest(crypto: CryptoProvider, header: Uint8Array, digests: readonly Uint8Array[]): Uint8Array {
  const h = crypto.createSha3_256();
  h.update(utf8(SNAPSHOT_SIGNING_PREFIX)).update(u32be(header.length)).update(header);
  for (const d of digests) h.update(d);
  return h.digest();
}

/** Options of {@link writeSnapshot}. */
export interface WriteSnapshotOptions {
  /** The kernel key that signs the snapshot. */
  readonly signingKey: SigningKey;
  /** Hashes. */
  readonly crypto: CryptoProvider;
  /** The creation time, ms since the epoch; default the clock's now. */
  readonly createdAt?: number;
  /** Clock for the default creation time (default the system clock). */
  readonly clock?: Clock;
  /** Bounds the snapshot must respect (the reader's defaults unless given): a writer never writes what a reader refuses. */
  readonly limits?: Partial<SnapshotLimits>;
}

/**
 * Write a snapshot: `FGSNAP1\n`, the header length (u32 big-endian), the header (canonical JSON with each
 * memory's pages, length and SHA3-256), every memory's bytes in header order, then the Ed25519 signature
 * (64 bytes) over SHA3-256( {@link SNAPSHOT_SIGNING_PREFIX} ‖ header length ‖ header ‖ memory digests ).
 * @param state - the captured state
 * @param options - signing key, crypto provider, creation time, limits
 * @returns the file's bytes
 * @throws ForgeError `INVALID_ARGUMENT` naming the field when the state is malformed (a memory whose bytes
 *   are not `pages × 65536`, a value that does not fit its type, indexes out of order), `LIMIT_EXCEEDED`
 *   when it is larger than the limits allow
 * @example
 * ```ts
 * const bytes = writeSnapshot(state, { signingKey: kernelKey, crypto });
 * const back = readSnapshot(bytes, { trustedKeys: [kernelKey.publicKey], crypto });
 * ```
 */
export function writeSnapshot(state: SnapshotState, options: WriteSnapshotOptions): Uint8Array {
  const { crypto, signingKey } = options;
  const limits = resolveLimits(options.limits);
  if (typeof state !== 'object' || state === null) throw new ForgeError('INVALID_ARGUMENT', 'a snapshot state must be an object');
  const createdAt = options.createdAt ?? (options.clock ?? systemClock).now();
  const instances = listOf(state.instances);
  const memoryBytes: Uint8Array[] = [];
  const digests: Uint8Array[] = [];
  const header = {
    type: SNAPSHOT_TYPE,
    version: SNAPSHOT_VERSION,
    kind: state.kind,
    moduleHash: state.moduleHash,
    createdAt,
    keyId: signingKey.keyId,
    container: { id: state.container?.id },
    ...(state.trace === undefined ? {} : { trace: { traceId: state.trace.traceId, seq: state.trace.seq, ...(state.trace.blockHash === undefined ? {} : { blockHash: state.trace.blockHash }) } }),
    instances: instances.map((inst, i) => ({
      moduleHash: inst.moduleHash,
      memories: listOf(inst.memories).map((m, k) => {
        if (!(m.bytes instanceof Uint8Array)) throw new ForgeError('INVALID_ARGUMENT', `snapshot field instances[${i}].memories[${k}].bytes must be a Uint8Array`, { details: { path: `instances[${i}].memories[${k}].bytes` } });
        memoryBytes.push(m.bytes);
        return { index: m.index, pages: m.pages, byteLength: m.bytes.length, sha3: '0'.repeat(64) };
      }),
      globals: listOf(inst.globals).map((g) => ({ index: g.index, type: g.type, mutable: g.mutable, value: g.value })),
    })),
  };
  const parsed = SnapshotHeaderSchema.safeParse(header);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = formatFieldPath(issue.path);
    throw new ForgeError('INVALID_ARGUMENT', `snapshot field ${path}: ${issue.message}`, { details: { path } });
  }
  const problem = checkHeader(parsed.data, limits);
  if (problem !== null) {
    throw new ForgeError(problem.reason === 'limit' ? 'LIMIT_EXCEEDED' : 'INVALID_ARGUMENT', `snapshot field ${problem.path}: ${problem.message}`, { details: { path: problem.path } });
  }
  // Digests only after the shape is known good (no hashing of bytes that will be refused).
  let k = 0;
  for (const inst of header.instances) {
    for (const m of inst.memories) {
      const d = crypto.sha3_256(memoryBytes[k++]!);
      digests.push(d);
      m.sha3 = toHex(d);
    }
  }
  const headerBytes = canonicalJsonBytes(header);
  if (headerBytes.length > limits.maxHeaderBytes) {
    throw new ForgeError('LIMIT_EXCEEDED', `snapshot header is ${headerBytes.length} bytes, the limit is ${limits.maxHeaderBytes}`, { details: { path: 'header' } });
  }
  const signature = signingKey.sign(signedDigest(crypto, headerBytes, digests));
  let total = PREFIX_BYTES + headerBytes.length + SIGNATURE_BYTES;
  for (const b of memoryBytes) total += b.length;
  const out = new Uint8Array(total);
  out.set(SNAPSHOT_MAGIC, 0);
  out.set(u32be(headerBytes.length), SNAPSHOT_MAGIC.length);
  let at = PREFIX_BYTES;
  out.set(headerBytes, at);
  at += headerBytes.length;
  for (const b of memoryBytes) {
    out.set(b, at);
    at += b.length;
  }
  out.set(signature, at);
  return out;
}

/** Options of {@link readSnapshot}. */
export interface ReadSnapshotOptions {
  /** Keys trusted to sign snapshots (the kernel key, e.g. `roleKeys(trustRoot, 'kernel')`). */
  readonly trustedKeys: TrustedKeys;
  /** Hashes and signature verification. */
  readonly crypto: CryptoProvider;
  /** Bounds checked before anything they bound is read (defaults {@link DEFAULT_SNAPSHOT_LIMITS}). */
  readonly limits?: Partial<SnapshotLimits>;
}

/**
 * Read and verify a snapshot: magic, bounds, header (strict UTF-8, canonical JSON, schema), the exact file
 * length, each memory's SHA3-256, then the signature by a trusted key. Nothing is returned unless all hold.
 * @param bytes - the file's bytes
 * @param options - trusted keys, crypto provider, limits
 * @returns the verified snapshot; its memory bytes are views into `bytes` (no copy)
 * @throws ForgeError `SNAPSHOT_INVALID` saying what is wrong (`details.reason`: `magic`, `truncated`,
 *   `limit`, `header`, `trailing-bytes`, `memory-digest`, `untrusted-key`, `signature`; `details.path`
 *   names a header field)
 */
export function readSnapshot(bytes: Uint8Array, options: ReadSnapshotOptions): Snapshot {
  const { crypto } = options;
  const limits = resolveLimits(options.limits);
  if (!(bytes instanceof Uint8Array)) throw invalid('header', 'the snapshot must be a Uint8Array');
  if (bytes.length < SNAPSHOT_MAGIC.length) throw invalid('truncated', `the file is ${bytes.length} bytes, shorter than the magic`);
  for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) if (bytes[i] !== SNAPSHOT_MAGIC[i]) throw invalid('magic', 'not a snapshot file (wrong magic bytes)');
  if (bytes.length < PREFIX_BYTES) throw invalid('truncated', 'the file ends inside the header length');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(SNAPSHOT_MAGIC.length);
  if (headerLength > limits.maxHeaderBytes) throw invalid('limit', `the header is ${headerLength} bytes, the limit is ${limits.maxHeaderBytes}`, { value: headerLength, limit: limits.maxHeaderBytes });
  if (headerLength > bytes.length - PREFIX_BYTES) throw invalid('truncated', `the file ends inside the header (${headerLength} bytes declared, ${bytes.length - PREFIX_BYTES} left)`);
  const headerBytes = bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength);
  const text = decodeUtf8Strict(headerBytes);
  if (text === undefined) throw invalid('header', 'the header is not valid UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw invalid('header', `the header is not JSON: ${(e as Error).message}`);
  }
  const parsed = SnapshotHeaderSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = formatFieldPath(issue.path);
    throw invalid('header', `header field ${path}: ${issue.message}`, { path });
  }
  const header = parsed.data;
  let canonical: string;
  try {
    canonical = canonicalJson(value);
  } catch {
    canonical = '';
  }
  if (canonical !== text) throw invalid('header', 'the header is not in canonical form');
  const problem = checkHeader(header, limits);
  if (problem !== null) throw invalid(problem.reason, `header field ${problem.path}: ${problem.message}`, { path: problem.path });

  // The exact length is known from the header: anything shorter is truncated, anything longer has trailing bytes.
  let memoryTotal = 0;
  for (const inst of header.instances) for (const m of inst.memories) memoryTotal += m.byteLength;
  const expected = PREFIX_BYTES + headerLength + memoryTotal + SIGNATURE_BYTES;
  if (bytes.length < expected) throw invalid('truncated', `the file is ${bytes.length} bytes, the header declares ${expected}`, { declared: expected, actual: bytes.length });
  if (bytes.length > expected) throw invalid('trailing-bytes', `${bytes.length - expected} bytes follow the signature`, { declared: expected, actual: bytes.length });

  let at = PREFIX_BYTES + headerLength;
  const digests: Uint8Array[] = [];
  const instances: SnapshotInstance[] = header.instances.map((inst, i) => ({
    moduleHash: inst.moduleHash,
    memories: inst.memories.map((m, k) => {
      const view = bytes.subarray(at, at + m.byteLength);
      at += m.byteLength;
      const d = crypto.sha3_256(view);
      if (toHex(d) !== m.sha3) {
        throw invalid('memory-digest', `the bytes of instances[${i}].memories[${k}] (memory ${m.index}) do not match their SHA3-256`, { path: `instances[${i}].memories[${k}].sha3` });
      }
      digests.push(d);
      return { index: m.index, pages: m.pages, bytes: view };
    }),
    globals: inst.globals.map((g) => ({ index: g.index, type: g.type, mutable: g.mutable, value: g.value })),
  }));
  const keys = trustedKeyMap(crypto, options.trustedKeys);
  const publicKey = keys.get(header.keyId);
  if (publicKey === undefined) throw invalid('untrusted-key', `signed by key ${header.keyId}, which is not trusted`, { keyId: header.keyId });
  const signature = bytes.subarray(at, at + SIGNATURE_BYTES);
  if (!crypto.verify(signature, signedDigest(crypto, headerBytes, digests), publicKey)) {
    throw invalid('signature', `the signature does not verify under key ${header.keyId}`, { keyId: header.keyId });
  }
  return {
    kind: header.kind,
    moduleHash: header.moduleHash,
    container: { id: header.container.id },
    ...(header.trace === undefined ? {} : { trace: positionOf(header.trace) }),
    instances,
    createdAt: header.createdAt,
    keyId: header.keyId,
    header,
  };
}

/**
 * Write a snapshot to a file atomically (a private temporary file beside it, then a rename; mode 0600).
 * @param path - the file
 * @param state - the captured state
 * @param options - as {@link writeSnapshot}
 * @returns the bytes written
 * @throws ForgeError as {@link writeSnapshot}; `IO_ERROR` when the file cannot be written
 */
export async function writeSnapshotFile(path: string, state: SnapshotState, options: WriteSnapshotOptions): Promise<Uint8Array> {
  const bytes = writeSnapshot(state, options);
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new ForgeError('IO_ERROR', `cannot write the snapshot ${path}: ${(cause as Error).message}`, { cause, details: { path } });
  }
  return bytes;
}

/**
 * Read and verify a snapshot file ({@link readSnapshot}); a file larger than the limits allow is refused
 * before it is read.
 * @param path - the file
 * @param options - as {@link readSnapshot}
 * @returns the verified snapshot
 * @throws ForgeError `SNAPSHOT_INVALID` as {@link readSnapshot}; `NOT_FOUND` when there is no such file;
 *   `IO_ERROR` when it cannot be read
 */
export async function readSnapshotFile(path: string, options: ReadSnapshotOptions): Promise<Snapshot> {
  const limits = resolveLimits(options.limits);
  const max = PREFIX_BYTES + limits.maxHeaderBytes + limits.maxMemoryBytes + SIGNATURE_BYTES;
  let bytes: Uint8Array;
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      if (size > max) throw invalid('limit', `the file is ${size} bytes, more than the limits allow (${max})`, { value: size, limit: max });
      bytes = new Uint8Array(size);
      let read = 0;
      while (read < size) {
        const { bytesRead } = await fh.read(bytes, read, size - read, read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      if (read < size) bytes = bytes.subarray(0, read);
    } finally {
      await fh.close();
    }
  } catch (cause) {
    if (cause instanceof ForgeError) throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new ForgeError('NOT_FOUND', `no snapshot file ${path}`, { cause, details: { path } });
    throw new ForgeError('IO_ERROR', `cannot read the snapshot ${path}: ${(cause as Error).message}`, { cause, details: { path } });
  }
  return readSnapshot(bytes, { ...options, limits });
}
