import { ForgeError } from '@forgeone/common';
import { WasmReader, encodeU } from './leb.js';

/** Section ids of the core binary format. */
export const SectionId = Object.freeze({
  Custom: 0,
  Type: 1,
  Import: 2,
  Function: 3,
  Table: 4,
  Memory: 5,
  Global: 6,
  Export: 7,
  Start: 8,
  Element: 9,
  Code: 10,
  Data: 11,
  DataCount: 12,
  Tag: 13,
} as const);

/** One section of a core module: its id and where its content lies in the module's bytes. */
export interface RawSection {
  /** The section id ({@link SectionId}). */
  readonly id: number;
  /** Offset of the first content byte (after id and size). */
  readonly start: number;
  /** Offset just past the last content byte. */
  readonly end: number;
}

/** The kinds of import and export. */
export type ExternKind = 'func' | 'table' | 'memory' | 'global' | 'tag';

const KINDS: readonly ExternKind[] = ['func', 'table', 'memory', 'global', 'tag'];

/** The declared limits of one memory. */
export interface MemoryInfo {
  /** Index in the memory index space (imports first). */
  readonly index: number;
  /** Whether the memory is imported. */
  readonly imported: boolean;
  /** Minimum size in 64 KiB pages. */
  readonly min: number;
  /** Maximum size in pages, or undefined when none is declared. */
  readonly max: number | undefined;
  /** Whether the memory is shared (threads). */
  readonly shared: boolean;
  /** Whether the memory is 64-bit (memory64). */
  readonly memory64: boolean;
  /** Whether the memory declares a custom page size (unsupported here). */
  readonly customPageSize: boolean;
}

/** An import of a core module. */
export interface ImportInfo {
  /** Module name. */
  readonly module: string;
  /** Field name. */
  readonly name: string;
  /** Kind. */
  readonly kind: ExternKind;
}

/** An export of a core module. */
export interface ExportInfo {
  /** Export name. */
  readonly name: string;
  /** Kind. */
  readonly kind: ExternKind;
  /** Index in the kind's index space. */
  readonly index: number;
}

/** What {@link inspectModule} reports. */
export interface ModuleInfo {
  /** Imports in order. */
  readonly imports: readonly ImportInfo[];
  /** Exports in order. */
  readonly exports: readonly ExportInfo[];
  /** Memories: imported ones first, then defined ones. */
  readonly memories: readonly MemoryInfo[];
  /** Imported functions, tables, memories, globals and tags. */
  readonly importCounts: Readonly<Record<ExternKind, number>>;
}

/**
 * Split a core module into sections after checking the header.
 * @param bytes - the module
 * @returns the sections in order
 * @throws ForgeError `WASM_INVALID` for a bad header, a component, or a truncated section
 */
export function readSections(bytes: Uint8Array): RawSection[] {
  if (!(bytes instanceof Uint8Array)) throw new ForgeError('WASM_INVALID', 'module bytes must be a Uint8Array');
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new ForgeError('WASM_INVALID', 'not a WebAssembly binary (bad magic)');
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    const component = bytes[6] === 1 && bytes[7] === 0;
    throw new ForgeError('WASM_INVALID', component ? 'a component, not a core module' : 'unsupported WebAssembly binary version', {
      details: { reason: component ? 'component' : 'version' },
    });
  }
  const r = new WasmReader(bytes, 8);
  const sections: RawSection[] = [];
  while (r.pos < r.end) {
    const id = r.u8();
    if (id > 13) r.fail(`unknown section id ${id}`);
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    sections.push({ id, start, end: r.pos });
  }
  return sections;
}

/** Parsed limits with the offsets they occupy. */
export interface RawLimits {
  /** The flags byte. */
  readonly flags: number;
  /** Minimum. */
  readonly min: number;
  /** Maximum, when flagged. */
  readonly max: number | undefined;
}

/**
 * Read memory or table limits.
 * @param r - the reader, at the flags byte
 * @returns the limits
 * @throws ForgeError `WASM_INVALID` for unknown flags
 */
export function readLimits(r: WasmReader): RawLimits {
  const flags = r.u8();
  if (flags > 0x0f) r.fail(`unknown limits flags 0x${flags.toString(16)}`);
  const wide = (flags & 0x04) !== 0;
  const min = wide ? r.u64() : r.u32();
  const max = (flags & 0x01) !== 0 ? (wide ? r.u64() : r.u32()) : undefined;
  if ((flags & 0x08) !== 0) r.u32(); // custom page size exponent
  return { flags, min, max };
}

/**
 * Skip a value type (including reference types with a heap type).
 * @param r - the reader
 */
export function skipValType(r: WasmReader): void {
  const b = r.u8();
  if (b === 0x63 || b === 0x64) r.skipLeb(5);
}

/**
 * Skip a table type (reference type and limits).
 * @param r - the reader
 */
export function skipTableType(r: WasmReader): void {
  skipValType(r);
  readLimits(r);
}

/** One entry of the import section, with where it lies. */
export interface RawImport extends ImportInfo {
  /** Offset of the entry. */
  readonly start: number;
  /** Offset of the type description (after the kind byte). */
  readonly descStart: number;
  /** Offset just past the entry. */
  readonly end: number;
  /** Memory limits, for memory imports. */
  readonly limits?: RawLimits;
}

/**
 * Read the import section.
 * @param bytes - the module
 * @param section - the import section
 * @returns the entries
 * @throws ForgeError `WASM_INVALID` when malformed
 */
export function readImports(bytes: Uint8Array, section: RawSection): RawImport[] {
  const r = new WasmReader(bytes, section.start, section.end);
  const n = r.u32();
  const out: RawImport[] = [];
  for (let i = 0; i < n; i++) {
    const start = r.pos;
    const module = r.name();
    const name = r.name();
    const k = r.u8();
    const kind = KINDS[k] ?? r.fail(`unknown import kind ${k}`);
    const descStart = r.pos;
    let limits: RawLimits | undefined;
    switch (kind) {
      case 'func':
        r.u32();
        break;
      case 'table':
        skipTableType(r);
        break;
      case 'memory':
        limits = readLimits(r);
        break;
      case 'global':
        skipValType(r);
        r.u8();
        break;
      case 'tag':
        r.u8();
        r.u32();
        break;
    }
    out.push(limits === undefined ? { module, name, kind, start, descStart, end: r.pos } : { module, name, kind, start, descStart, end: r.pos, limits });
  }
  if (r.pos !== r.end) r.fail('import section has trailing bytes');
  return out;
}

/**
 * Read the memory section's limits.
 * @param bytes - the module
 * @param section - the memory section
 * @returns one entry per defined memory
 * @throws ForgeError `WASM_INVALID` when malformed
 */
export function readMemories(bytes: Uint8Array, section: RawSection): RawLimits[] {
  const r = new WasmReader(bytes, section.start, section.end);
  const n = r.u32();
  const out: RawLimits[] = [];
  for (let i = 0; i < n; i++) out.push(readLimits(r));
  if (r.pos !== r.end) r.fail('memory section has trailing bytes');
  return out;
}

/**
 * Read the export section.
 * @param bytes - the module
 * @param section - the export section
 * @returns the exports
 * @throws ForgeError `WASM_INVALID` when malformed
 */
export function readExports(bytes: Uint8Array, section: RawSection): ExportInfo[] {
  const r = new WasmReader(bytes, section.start, section.end);
  const n = r.u32();
  const out: ExportInfo[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.name();
    const k = r.u8();
    const kind = KINDS[k] ?? r.fail(`unknown export kind ${k}`);
    out.push({ name, kind, index: r.u32() });
  }
  return out;
}

/**
 * Describe a limits record as a {@link MemoryInfo}.
 * @param index - the memory index
 * @param imported - whether imported
 * @param l - the limits
 * @returns the info
 */
export function memoryInfo(index: number, imported: boolean, l: RawLimits): MemoryInfo {
  return {
    index,
    imported,
    min: l.min,
    max: l.max,
    shared: (l.flags & 0x02) !== 0,
    memory64: (l.flags & 0x04) !== 0,
    customPageSize: (l.flags & 0x08) !== 0,
  };
}

/**
 * Read a core module's imports, exports and memories without compiling it.
 * @param bytes - the module
 * @returns what the module imports, exports and declares as memory
 * @throws ForgeError `WASM_INVALID` when the structure is malformed (it does not validate function bodies)
 * @example
 * ```ts
 * const { memories } = inspectModule(bytes);
 * console.log(memories[0]?.max); // pages, or undefined
 * ```
 */
export function inspectModule(bytes: Uint8Array): ModuleInfo {
  const sections = readSections(bytes);
  const imports: RawImport[] = [];
  const exports: ExportInfo[] = [];
  const memories: MemoryInfo[] = [];
  const importCounts: Record<ExternKind, number> = { func: 0, table: 0, memory: 0, global: 0, tag: 0 };
  for (const s of sections) {
    if (s.id === SectionId.Import) imports.push(...readImports(bytes, s));
    else if (s.id === SectionId.Export) exports.push(...readExports(bytes, s));
  }
  for (const i of imports) {
    if (i.kind === 'memory' && i.limits !== undefined) memories.push(memoryInfo(importCounts.memory, true, i.limits));
    importCounts[i.kind]++;
  }
  for (const s of sections) {
    if (s.id === SectionId.Memory) for (const l of readMemories(bytes, s)) memories.push(memoryInfo(memories.length, false, l));
  }
  return {
    imports: imports.map(({ module, name, kind }) => ({ module, name, kind })),
    exports,
    memories,
    importCounts,
  };
}

/** Canonical order of the known sections (custom sections may stand anywhere). */
const ORDER: Readonly<Record<number, number>> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

/**
 * Reassemble a module: its sections in order, some with new contents, and new sections inserted where the
 * canonical section order puts them (before the first later non-custom section).
 * @param bytes - the original module
 * @param sections - its sections (`readSections`)
 * @param replaced - new contents of some sections
 * @param added - sections to insert (at most one per id)
 * @returns the new module's bytes
 */
export function assembleModule(bytes: Uint8Array, sections: readonly RawSection[], replaced: ReadonlyMap<RawSection, number[]>, added: readonly { id: number; content: number[] }[]): Uint8Array {
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  const pending = [...added].sort((a, b) => ORDER[a.id]! - ORDER[b.id]!);
  const emit = (id: number, content: ArrayLike<number>): void => {
    parts.push(Uint8Array.from([id, ...encodeU(content.length)]));
    parts.push(content instanceof Uint8Array ? content : Uint8Array.from(content));
  };
  for (const s of sections) {
    if (s.id !== SectionId.Custom) {
      while (pending.length > 0 && ORDER[pending[0]!.id]! < ORDER[s.id]!) {
        const a = pending.shift()!;
        emit(a.id, a.content);
      }
    }
    const r = replaced.get(s);
    emit(s.id, r ?? bytes.subarray(s.start, s.end));
  }
  for (const a of pending) emit(a.id, a.content);
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
