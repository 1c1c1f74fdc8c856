import { ForgeError } from '@forgeone/common';
import type { SnapshotState } from '@forgeone/observer';
import { exportState, type StateLayout } from '../binary/export-state.js';
import { limitMemoryDetailed } from '../binary/limit-memory.js';
import { sha3Hex } from '../component/loader.js';
import { trapError } from '../wasi/run.js';
import { createSnapshotter, type SnapshotTarget } from './snapshotter.js';

/** Options of {@link prepareSnapshotModule}. */
export interface SnapshotModuleOptions {
  /** Also write a memory limit (pages) into the module, as the sandbox does (`limitMemoryDetailed`). */
  readonly maxPages?: number;
}

/** A core module prepared for snapshots: compiled from the rewritten bytes, identified by the original's hash. */
export interface SnapshotModule {
  /** SHA3-256 (hex) of the original bytes: a snapshot's `moduleHash`. */
  readonly moduleHash: string;
  /** The rewritten bytes (state exported; memory limited when asked). */
  readonly bytes: Uint8Array;
  /** The compiled module. */
  readonly module: WebAssembly.Module;
  /** Where its state lies. */
  readonly layout: StateLayout;
}

/**
 * Prepare a core module (plain or WASI preview1) for snapshots: hash the original bytes, export its state
 * (`exportState`), optionally limit its memory, compile.
 * @param bytes - the original module
 * @param options - an optional memory limit
 * @returns the prepared module
 * @throws ForgeError `WASM_INVALID` (not a valid core module), `SNAPSHOT_UNSUPPORTED` (see `exportState`),
 *   `SANDBOX_MEMORY_EXCEEDED` / `INVALID_ARGUMENT` (see `limitMemoryDetailed`)
 */
export async function prepareSnapshotModule(bytes: Uint8Array, options: SnapshotModuleOptions = {}): Promise<SnapshotModule> {
  const moduleHash = sha3Hex(bytes);
  const exported = exportState(bytes);
  let rewritten = exported.bytes;
  if (options.maxPages !== undefined) rewritten = limitMemoryDetailed(rewritten, options.maxPages, { validate: false }).bytes;
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(rewritten as Uint8Array<ArrayBuffer>);
  } catch (cause) {
    throw new ForgeError('WASM_INVALID', `the module prepared for snapshots does not compile: ${(cause as Error).message}`, { cause });
  }
  // Memory maxima as compiled (a limit written after exportState lowers them).
  const limits = new Map<number, number | undefined>();
  if (options.maxPages !== undefined) for (const m of exported.layout.memories) limits.set(m.index, Math.min(m.max ?? options.maxPages, options.maxPages));
  const layout: StateLayout = limits.size === 0 ? exported.layout : { ...exported.layout, memories: exported.layout.memories.map((m) => ({ ...m, max: limits.get(m.index) })) };
  return { moduleHash, bytes: rewritten, module, layout };
}

/** Options of {@link instantiateWithSnapshot}. */
export interface InstantiateWithSnapshotOptions {
  /** A verified snapshot (`readSnapshot`) or a captured state to restore into the new instance. */
  readonly snapshot?: SnapshotState;
}

/** An instance of a prepared module, ready for the {@link createSnapshotter | snapshotter}. */
export interface SnapshotModuleInstance extends SnapshotTarget {
  /** The instance. */
  readonly instance: WebAssembly.Instance;
}

/**
 * Instantiate a prepared module and, when given a snapshot, restore it before anything is called. A WASI
 * preview1 module: pass `host.imports`, then `host.bind(instance)`; do not call `_initialize` again after a
 * restore (the snapshot holds its effect on memory and globals).
 * @param prepared - the module ({@link prepareSnapshotModule})
 * @param imports - its imports
 * @param options - a snapshot to restore
 * @returns the instance as a snapshot target
 * @throws ForgeError `WASM_LINK_ERROR` (imports do not fit), `WASM_TRAP` (the start function trapped),
 *   `SNAPSHOT_MODULE_MISMATCH` (the snapshot is of another module), `SNAPSHOT_UNSUPPORTED`,
 *   `SANDBOX_MEMORY_EXCEEDED` (see the snapshotter's `restore`)
 */
export function instantiateWithSnapshot(prepared: SnapshotModule, imports: WebAssembly.Imports = {}, options: InstantiateWithSnapshotOptions = {}): SnapshotModuleInstance {
  if (options.snapshot !== undefined && options.snapshot.moduleHash !== prepared.moduleHash) {
    // Refused before instantiation: a start function never runs for a snapshot that cannot be restored.
    throw new ForgeError('SNAPSHOT_MODULE_MISMATCH', `the snapshot was taken of module ${options.snapshot.moduleHash}, not of ${prepared.moduleHash}`, {
      details: { expected: prepared.moduleHash, actual: options.snapshot.moduleHash },
    });
  }
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(prepared.module, imports);
  } catch (cause) {
    if (cause instanceof WebAssembly.LinkError) throw new ForgeError('WASM_LINK_ERROR', `cannot link the module: ${cause.message}`, { cause });
    throw trapError(cause);
  }
  const target: SnapshotModuleInstance = {
    kind: 'module',
    moduleHash: prepared.moduleHash,
    instances: [{ moduleHash: prepared.moduleHash, instance, layout: prepared.layout }],
    instance,
  };
  if (options.snapshot !== undefined) createSnapshotter().restore(target, options.snapshot);
  return target;
}
