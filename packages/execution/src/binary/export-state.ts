import { ForgeError } from '@forgeone/common';
import { WasmReader, encodeName, encodeU } from './leb.js';
import { SectionId, assembleModule, memoryInfo, readExports, readImports, readMemories, readSections, type ExportInfo, type RawSection } from './module.js';

/** Prefix of the exports {@link exportState} adds for defined globals: `__forgeone_global_<index>`. */
export const STATE_GLOBAL_EXPORT_PREFIX = '__forgeone_global_';
/** Prefix of the exports {@link exportState} adds for defined memories the module does not export: `__forgeone_memory_<index>`. */
export const STATE_MEMORY_EXPORT_PREFIX = '__forgeone_memory_';
/** Name of the immutable i32 global {@link exportState} adds and exports when given a `tag`. */
export const STATE_TAG_EXPORT = '__forgeone_module_tag';

/** The type of a global as the state layout records it: a number type, `v128`, or a reference (`ref`). */
export type StateValueType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'ref';

/** One global of a module, as {@link exportState} found it. */
export interface StateGlobal {
  /** Index in the global index space (imported globals first). */
  readonly index: number;
  /** The value type. */
  readonly type: StateValueType;
  /** Whether it is mutable. */
  readonly mutable: boolean;
  /** Whether it is imported (then it belongs to whoever supplied it, and is not captured). */
  readonly imported: boolean;
  /** The export to read it through, or null for imported globals. */
  readonly export: string | null;
}

/** One memory of a module, as {@link exportState} found it. */
export interface StateMemory {
  /** Index in the memory index space (imported memories first). */
  readonly index: number;
  /** Whether it is imported (then it belongs to whoever supplied it, and is not captured). */
  readonly imported: boolean;
  /** The export to read it through (the module's own export when it had one), or null for imported memories. */
  readonly export: string | null;
  /** Declared minimum, in pages. */
  readonly min: number;
  /** Declared maximum in pages, or undefined. */
  readonly max: number | undefined;
  /** Whether it is shared (threads). */
  readonly shared: boolean;
  /** Whether it is a 64-bit memory. */
  readonly memory64: boolean;
}

/** Where an instance's state lies: every global and memory of the module, and how to reach the defined ones. */
export interface StateLayout {
  /** Every global, imported ones first. */
  readonly globals: readonly StateGlobal[];
  /** Every memory, imported ones first. */
  readonly memories: readonly StateMemory[];
  /** Tables (imported and defined): their contents are never captured. */
  readonly tables: number;
  /** The tag given to {@link exportState}, or null. */
  readonly tag: number | null;
}

/** What {@link exportState} returns. */
export interface StateExportedModule {
  /** The rewritten module. */
  readonly bytes: Uint8Array;
  /** Its state layout. */
  readonly layout: StateLayout;
}

/** Options of {@link exportState}. */
export interface ExportStateOptions {
  /** Validate the input with `WebAssembly.validate` first (default true). */
  readonly validate?: boolean;
  /**
   * A number (u32) identifying the module: an immutable i32 global holding it is added and exported as
   * {@link STATE_TAG_EXPORT}, so an instance can be matched to its module (a component's glue reports
   * instances, not modules). No tag: nothing is added.
   */
  readonly tag?: number;
}

const NUM_TYPES: Readonly<Record<number, StateValueType>> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128' };

function unsupported(message: string): never {
  throw new ForgeError('SNAPSHOT_UNSUPPORTED', message);
}

/** Read a global type (value type and mutability). */
function readGlobalType(r: WasmReader): { type: StateValueType; mutable: boolean } {
  const b = r.u8();
  let type: StateValueType;
  const num = NUM_TYPES[b];
  if (num !== undefined) type = num;
  else if (b === 0x63 || b === 0x64) {
    r.skipLeb(5);
    type = 'ref';
  } else if (b >= 0x69 && b <= 0x74) type = 'ref';
  else r.fail(`unknown value type 0x${b.toString(16)}`);
  const m = r.u8();
  if (m > 1) r.fail(`unknown mutability 0x${m.toString(16)}`);
  return { type, mutable: m === 1 };
}

/** Skip a constant expression (a global's initialiser), through its `end`. */
function skipConstExpr(r: WasmReader): void {
  for (;;) {
    const op = r.u8();
    switch (op) {
      case 0x0b:
        return;
      case 0x41:
        r.skipLeb(5);
        break;
      case 0x42:
        r.skipLeb(10);
        break;
      case 0x43:
        r.skip(4);
        break;
      case 0x44:
        r.skip(8);
        break;
      case 0x23:
      case 0xd2:
        r.u32();
        break;
      case 0xd0:
        r.skipLeb(5);
        break;
      case 0x6a:
      case 0x6b:
      case 0x6c:
      case 0x7c:
      case 0x7d:
      case 0x7e:
        break;
      case 0xfd: {
        const sub = r.u32();
        if (sub !== 12) unsupported(`a global initialiser uses SIMD instruction ${sub}, which the snapshot rewriter does not read`);
        r.skip(16);
        break;
      }
      case 0xfb: {
        const sub = r.u32();
        if (sub === 0 || sub === 1 || sub === 6 || sub === 7) r.u32();
        else if (sub === 8) {
          r.u32();
          r.u32();
        } else if (sub !== 26 && sub !== 27 && sub !== 28) unsupported(`a global initialiser uses GC instruction ${sub}, which the snapshot rewriter does not read`);
        break;
      }
      default:
        unsupported(`a global initialiser uses opcode 0x${op.toString(16)}, which the snapshot rewriter does not read`);
    }
  }
}

/**
 * Rewrite a core module so the host can read and write its state between calls: every global it defines
 * (mutable or not) is exported as `__forgeone_global_<index>`, and every memory it defines and does not
 * export already as `__forgeone_memory_<index>`. Nothing else changes: the code, the other exports and
 * the behaviour are the module's own. Imported globals and memories belong to whoever supplied them; the
 * layout records them as imported (not captured). Tables are counted, never exported.
 * @param bytes - a core WebAssembly module (the original: hash it before rewriting)
 * @param options - validation switch and an optional module tag
 * @returns the rewritten module and its state layout
 * @throws ForgeError `WASM_INVALID` for malformed bytes or a component, `SNAPSHOT_UNSUPPORTED` when a global
 *   initialiser uses an instruction the rewriter does not read or the module already exports one of the
 *   names it would add (rewritten twice), `INVALID_ARGUMENT` for a bad tag
 * @example
 * ```ts
 * const { bytes: rewritten, layout } = exportState(original);
 * const instance = new WebAssembly.Instance(new WebAssembly.Module(rewritten), imports);
 * const sp = instance.exports[layout.globals[0]!.export!]; // a WebAssembly.Global
 * ```
 */
export function exportState(bytes: Uint8Array, options: ExportStateOptions = {}): StateExportedModule {
  const tag = options.tag;
  if (tag !== undefined && (!Number.isInteger(tag) || tag < 0 || tag > 0xffff_ffff)) {
    throw new ForgeError('INVALID_ARGUMENT', `a module tag must be an integer in [0, 2^32), got ${String(tag)}`);
  }
  const sections = readSections(bytes);
  if (options.validate !== false && !WebAssembly.validate(bytes as BufferSource)) {
    throw new ForgeError('WASM_INVALID', 'the module does not validate');
  }
  const globals: StateGlobal[] = [];
  const memories: StateMemory[] = [];
  let tables = 0;
  let exportSection: RawSection | undefined;
  let globalSection: RawSection | undefined;
  let exports: ExportInfo[] = [];

  for (const s of sections) {
    if (s.id === SectionId.Import) {
      for (const e of readImports(bytes, s)) {
        if (e.kind === 'global') {
          const r = new WasmReader(bytes, e.descStart, e.end);
          const g = readGlobalType(r);
          globals.push({ index: globals.length, ...g, imported: true, export: null });
        } else if (e.kind === 'memory' && e.limits !== undefined) {
          const info = memoryInfo(memories.length, true, e.limits);
          memories.push({ index: info.index, imported: true, export: null, min: info.min, max: info.max, shared: info.shared, memory64: info.memory64 });
        } else if (e.kind === 'table') tables++;
      }
    } else if (s.id === SectionId.Table) {
      tables += new WasmReader(bytes, s.start, s.end).u32();
    } else if (s.id === SectionId.Memory) {
      for (const l of readMemories(bytes, s)) {
        const info = memoryInfo(memories.length, false, l);
        memories.push({ index: info.index, imported: false, export: null, min: info.min, max: info.max, shared: info.shared, memory64: info.memory64 });
      }
    } else if (s.id === SectionId.Global) {
      globalSection = s;
      const r = new WasmReader(bytes, s.start, s.end);
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const g = readGlobalType(r);
        skipConstExpr(r);
        globals.push({ index: globals.length, ...g, imported: false, export: `${STATE_GLOBAL_EXPORT_PREFIX}${globals.length}` });
      }
      if (r.pos !== r.end) r.fail('global section has trailing bytes');
    } else if (s.id === SectionId.Export) {
      exportSection = s;
      exports = readExports(bytes, s);
    }
  }

  // New exports: memories without an export of their own, then every defined global, then the tag.
  const taken = new Set(exports.map((e) => e.name));
  const added: number[] = [];
  let count = 0;
  const addExport = (name: string, kind: number, index: number): void => {
    if (taken.has(name)) unsupported(`the module already exports ${JSON.stringify(name)}: was it rewritten for snapshots twice?`);
    taken.add(name);
    added.push(...encodeName(name), kind, ...encodeU(index));
    count++;
  };
  for (let i = 0; i < memories.length; i++) {
    const m = memories[i]!;
    if (m.imported) continue;
    const own = exports.find((e) => e.kind === 'memory' && e.index === m.index);
    const name = own?.name ?? `${STATE_MEMORY_EXPORT_PREFIX}${m.index}`;
    memories[i] = { ...m, export: name };
    if (own === undefined) addExport(name, 0x02, m.index);
  }
  for (const g of globals) {
    if (g.export !== null) addExport(g.export, 0x03, g.index);
  }
  const replaced = new Map<RawSection, number[]>();
  const inserted: { id: number; content: number[] }[] = [];
  if (tag !== undefined) {
    // An immutable i32 global appended after every other global: no index moves.
    const entry = [0x7f, 0x00, 0x41, ...encodeSigned32(tag | 0), 0x0b];
    if (globalSection === undefined) inserted.push({ id: SectionId.Global, content: [0x01, ...entry] });
    else {
      const r = new WasmReader(bytes, globalSection.start, globalSection.end);
      const n = r.u32();
      replaced.set(globalSection, [...encodeU(n + 1), ...bytes.subarray(r.pos, globalSection.end), ...entry]);
    }
    addExport(STATE_TAG_EXPORT, 0x03, globals.length);
  }
  if (count > 0) {
    if (exportSection === undefined) inserted.push({ id: SectionId.Export, content: [...encodeU(count), ...added] });
    else {
      const r = new WasmReader(bytes, exportSection.start, exportSection.end);
      const n = r.u32();
      replaced.set(exportSection, [...encodeU(n + count), ...bytes.subarray(r.pos, exportSection.end), ...added]);
    }
  }
  const out = assembleModule(bytes, sections, replaced, inserted);
  return { bytes: out, layout: { globals, memories, tables, tag: tag ?? null } };
}

/** Signed LEB128 of a 32-bit integer. */
function encodeSigned32(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

