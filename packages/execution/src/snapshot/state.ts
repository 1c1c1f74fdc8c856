import { ForgeError } from '@forgeone/common';
import { SNAPSHOT_PAGE_SIZE, decodeGlobalValue, encodeGlobalValue, type SnapshotGlobal, type SnapshotInstance, type SnapshotMemory, type SnapshotValueType } from '@forgeone/observer';
import type { StateLayout } from '../binary/export-state.js';

/** One core instance whose state can be captured: the instance, its module's layout and the original module's hash. */
export interface SnapshotInstanceRef {
  /** SHA3-256 (hex) of the original core module bytes, before any rewriting. */
  readonly moduleHash: string;
  /** The instance of the rewritten module (`exportState`). */
  readonly instance: WebAssembly.Instance;
  /** The layout `exportState` reported for the module. */
  readonly layout: StateLayout;
}

const NUMBER_TYPES: ReadonlySet<string> = new Set(['i32', 'i64', 'f32', 'f64']);

function memoryOf(ref: SnapshotInstanceRef, name: string, index: number): WebAssembly.Memory {
  const m = ref.instance.exports[name];
  if (!(m instanceof WebAssembly.Memory)) {
    throw new ForgeError('SNAPSHOT_UNSUPPORTED', `the instance does not export memory ${index} as ${JSON.stringify(name)}: it is not an instance of the module prepared for snapshots`, {
      details: { memory: index, export: name },
    });
  }
  return m;
}

function globalOf(ref: SnapshotInstanceRef, name: string, index: number): WebAssembly.Global {
  const g = ref.instance.exports[name];
  if (!(g instanceof WebAssembly.Global)) {
    throw new ForgeError('SNAPSHOT_UNSUPPORTED', `the instance does not export global ${index} as ${JSON.stringify(name)}: it is not an instance of the module prepared for snapshots`, {
      details: { global: index, export: name },
    });
  }
  return g;
}

/**
 * Capture one instance's defined memories (pages and a copy of their bytes) and defined globals (exact
 * values). Call it between calls only: nothing of a running call's stack is captured.
 * @param ref - the instance, its layout and its module hash
 * @returns the instance's state
 * @throws ForgeError `SNAPSHOT_UNSUPPORTED` for a shared or 64-bit memory, a mutable `v128` or reference
 *   global (immutable ones are skipped: a fresh instance of the same module recomputes them), or an
 *   instance that lacks the layout's exports
 */
export function captureInstanceState(ref: SnapshotInstanceRef): SnapshotInstance {
  const memories: SnapshotMemory[] = [];
  for (const m of ref.layout.memories) {
    if (m.imported || m.export === null) continue;
    if (m.shared) throw new ForgeError('SNAPSHOT_UNSUPPORTED', `memory ${m.index} is shared (threads): another thread could change it while it is copied`, { details: { memory: m.index } });
    if (m.memory64) throw new ForgeError('SNAPSHOT_UNSUPPORTED', `memory ${m.index} is a 64-bit memory, which snapshots do not hold`, { details: { memory: m.index } });
    const memory = memoryOf(ref, m.export, m.index);
    const bytes = new Uint8Array(memory.buffer).slice();
    memories.push({ index: m.index, pages: bytes.length / SNAPSHOT_PAGE_SIZE, bytes });
  }
  const globals: SnapshotGlobal[] = [];
  for (const g of ref.layout.globals) {
    if (g.imported || g.export === null) continue;
    if (!NUMBER_TYPES.has(g.type)) {
      if (!g.mutable) continue;
      throw new ForgeError('SNAPSHOT_UNSUPPORTED', `global ${g.index} is a mutable ${g.type} global, whose value a snapshot cannot hold`, { details: { global: g.index, type: g.type } });
    }
    const type = g.type as SnapshotValueType;
    const value = globalOf(ref, g.export, g.index).value as number | bigint;
    globals.push({ index: g.index, type, mutable: g.mutable, value: encodeGlobalValue(type, value) });
  }
  return { moduleHash: ref.moduleHash, memories, globals };
}

/** A restore checked against the instance, ready to apply. */
export interface RestorePlan {
  /** Apply it: grow memories, write their bytes, set mutable globals. */
  apply(): void;
}

function mismatch(message: string, details: Record<string, unknown>): ForgeError {
  return new ForgeError('SNAPSHOT_MODULE_MISMATCH', message, { details });
}

/**
 * Check a state against an instance without changing anything, and return what to apply: the module hash,
 * the memories and globals (same indexes, types, mutability; immutable values equal), each memory's size
 * against its maximum and its current size.
 * @param ref - the instance, its layout and its module hash
 * @param state - the instance's state from a snapshot
 * @returns the plan
 * @throws ForgeError `SNAPSHOT_MODULE_MISMATCH` (another module, or the same module built differently),
 *   `SANDBOX_MEMORY_EXCEEDED` (a memory's maximum is below the snapshot's size), `SNAPSHOT_UNSUPPORTED`
 *   (the instance's memory is already larger than the snapshot's: restore into a fresh instance)
 */
export function planRestore(ref: SnapshotInstanceRef, state: SnapshotInstance): RestorePlan {
  if (state.moduleHash !== ref.moduleHash) {
    throw mismatch(`the snapshot was taken of module ${state.moduleHash}, not of this instance's module ${ref.moduleHash}`, { expected: ref.moduleHash, actual: state.moduleHash });
  }
  const steps: (() => void)[] = [];
  const writes: (() => void)[] = [];
  const layoutMemories = ref.layout.memories.filter((m) => !m.imported && m.export !== null);
  if (layoutMemories.length !== state.memories.length || layoutMemories.some((m, i) => state.memories[i]!.index !== m.index)) {
    throw mismatch(`the snapshot holds memories [${state.memories.map((m) => m.index).join(', ')}], this module defines [${layoutMemories.map((m) => m.index).join(', ')}]`, {});
  }
  for (let i = 0; i < layoutMemories.length; i++) {
    const m = layoutMemories[i]!;
    const s = state.memories[i]!;
    if (s.bytes.length !== s.pages * SNAPSHOT_PAGE_SIZE) throw new ForgeError('INVALID_ARGUMENT', `memory ${m.index} of the state holds ${s.bytes.length} bytes for ${s.pages} pages`);
    const memory = memoryOf(ref, m.export!, m.index);
    const current = memory.buffer.byteLength / SNAPSHOT_PAGE_SIZE;
    if (m.max !== undefined && s.pages > m.max) {
      throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `memory ${m.index} held ${s.pages} pages; this module allows at most ${m.max}`, { details: { memory: m.index, pages: s.pages, max: m.max } });
    }
    if (current > s.pages) {
      throw new ForgeError('SNAPSHOT_UNSUPPORTED', `memory ${m.index} already has ${current} pages, more than the snapshot's ${s.pages}: restore into a fresh instance`, { details: { memory: m.index, pages: s.pages, current } });
    }
    steps.push(() => {
      if (s.pages > current) {
        try {
          memory.grow(s.pages - current);
        } catch (cause) {
          throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `memory ${m.index} cannot grow to the snapshot's ${s.pages} pages (its limit is lower): the instance must be discarded`, {
            cause,
            details: { memory: m.index, pages: s.pages },
          });
        }
      }
    });
    writes.push(() => new Uint8Array(memory.buffer).set(s.bytes));
  }
  const opaque = ref.layout.globals.find((g) => !g.imported && g.mutable && !NUMBER_TYPES.has(g.type));
  if (opaque !== undefined) {
    throw new ForgeError('SNAPSHOT_UNSUPPORTED', `global ${opaque.index} is a mutable ${opaque.type} global, which a snapshot cannot restore`, { details: { global: opaque.index, type: opaque.type } });
  }
  const layoutGlobals = ref.layout.globals.filter((g) => !g.imported && g.export !== null && NUMBER_TYPES.has(g.type));
  if (layoutGlobals.length !== state.globals.length) {
    throw mismatch(`the snapshot holds ${state.globals.length} globals, this module defines ${layoutGlobals.length}`, {});
  }
  for (let i = 0; i < layoutGlobals.length; i++) {
    const g = layoutGlobals[i]!;
    const s = state.globals[i]!;
    if (s.index !== g.index || s.type !== g.type || s.mutable !== g.mutable) {
      throw mismatch(`global ${g.index} is ${g.mutable ? 'mutable' : 'immutable'} ${g.type} here; the snapshot holds ${s.mutable ? 'mutable' : 'immutable'} ${s.type} global ${s.index}`, { global: g.index });
    }
    const global = globalOf(ref, g.export!, g.index);
    const value = decodeGlobalValue(s.type, s.value);
    if (!g.mutable) {
      const here = encodeGlobalValue(s.type, global.value as number | bigint);
      if (here !== s.value) throw mismatch(`immutable global ${g.index} is ${here} here, the snapshot holds ${s.value}`, { global: g.index, expected: here, actual: s.value });
      continue;
    }
    writes.push(() => {
      global.value = value;
    });
  }
  return {
    apply(): void {
      for (const step of steps) step();
      for (const write of writes) write();
    },
  };
}

/**
 * Restore one instance's state: check everything first ({@link planRestore}), then grow its memories to the
 * snapshot's sizes, write their bytes and set its mutable globals. Restore into a fresh instance, before
 * any call.
 * @param ref - the instance, its layout and its module hash
 * @param state - the instance's state from a snapshot
 * @throws ForgeError as {@link planRestore}; `SANDBOX_MEMORY_EXCEEDED` when a memory cannot grow (a limit
 *   written into the module below the snapshot's size; the instance must then be discarded)
 */
export function restoreInstanceState(ref: SnapshotInstanceRef, state: SnapshotInstance): void {
  planRestore(ref, state).apply();
}
