import { ForgeError } from '@forgeone/common';
import { WasmReader, encodeName, encodeU } from './leb.js';
import {
  SectionId,
  memoryInfo,
  readExports,
  readImports,
  readMemories,
  readSections,
  skipValType,
  type MemoryInfo,
  type RawLimits,
  type RawSection,
  assembleModule,
} from './module.js';

/** The largest number of 64 KiB pages a 32-bit memory can have (4 GiB). */
export const MAX_PAGES_32 = 65536;

/** Size of one WebAssembly page in bytes. */
export const PAGE_SIZE = 65536;

/**
 * Name of the mutable i32 global {@link limitMemoryDetailed} exports from an instrumented module: 0 until a
 * `memory.grow` fails, then the number of pages the failed grow asked for.
 */
export const MEMORY_EXCEEDED_EXPORT = '__forgeone_memory_exceeded';

/** Options of {@link limitMemoryDetailed}. */
export interface LimitMemoryOptions {
  /**
   * Instrument every `memory.grow` so a failed grow is visible to the host through the
   * {@link MEMORY_EXCEEDED_EXPORT} global. Default true. Modules whose code the rewriter cannot decode
   * (GC types, unknown opcodes) are limited but not instrumented.
   */
  readonly instrument?: boolean;
  /** Validate the input with `WebAssembly.validate` first (default true). */
  readonly validate?: boolean;
}

/** What {@link limitMemoryDetailed} did. */
export interface LimitedModule {
  /** The rewritten module. */
  readonly bytes: Uint8Array;
  /** The memories as rewritten. */
  readonly memories: readonly MemoryInfo[];
  /** Whether `memory.grow` was instrumented ({@link MEMORY_EXCEEDED_EXPORT} is exported). */
  readonly instrumented: boolean;
  /** How many `memory.grow` instructions were found. */
  readonly grows: number;
}

/**
 * Rewrite a core module so every memory it defines or imports has a maximum of at most `maxPages`.
 * @param bytes - a core WebAssembly module
 * @param maxPages - the limit in 64 KiB pages (0 to 65536)
 * @returns the rewritten module (a new array; the input is not modified)
 * @throws ForgeError `SANDBOX_MEMORY_EXCEEDED` when a memory's minimum is above the limit, `WASM_INVALID` for
 *   malformed bytes, memory64 or custom page sizes, `INVALID_ARGUMENT` for a bad limit
 * @example
 * ```ts
 * const limited = limitMemory(bytes, 256); // at most 16 MiB per memory
 * const module = await WebAssembly.compile(limited);
 * ```
 */
export function limitMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  return limitMemoryDetailed(bytes, maxPages).bytes;
}

/**
 * {@link limitMemory} with a report, and with `memory.grow` instrumented so the host can tell that a trap
 * followed a refused grow (see {@link MEMORY_EXCEEDED_EXPORT} and {@link memoryExceeded}).
 * @param bytes - a core WebAssembly module
 * @param maxPages - the limit in 64 KiB pages (0 to 65536)
 * @param options - instrumentation and validation switches
 * @returns the rewritten module and what was done
 * @throws ForgeError `SANDBOX_MEMORY_EXCEEDED`, `WASM_INVALID` or `INVALID_ARGUMENT` as {@link limitMemory}
 */
export function limitMemoryDetailed(bytes: Uint8Array, maxPages: number, options: LimitMemoryOptions = {}): LimitedModule {
  if (!Number.isInteger(maxPages) || maxPages < 0 || maxPages > MAX_PAGES_32) {
    throw new ForgeError('INVALID_ARGUMENT', `memory limit must be an integer number of pages in [0, ${MAX_PAGES_32}], got ${String(maxPages)}`);
  }
  const sections = readSections(bytes);
  if (options.validate !== false && !WebAssembly.validate(bytes as BufferSource)) {
    throw new ForgeError('WASM_INVALID', 'the module does not validate');
  }
  const replaced = new Map<RawSection, number[]>();
  const memories: MemoryInfo[] = [];
  let importedFuncs = 0;
  let importedGlobals = 0;

  const clamp = (l: RawLimits, index: number, imported: boolean): number[] => {
    const info = memoryInfo(index, imported, l);
    if (info.memory64) {
      throw new ForgeError('WASM_INVALID', `memory ${index} is a 64-bit memory (memory64), which the sandbox does not support`, {
        details: { reason: 'memory64', memory: index },
      });
    }
    if (info.customPageSize) {
      throw new ForgeError('WASM_INVALID', `memory ${index} declares a custom page size, which the sandbox does not support`, {
        details: { reason: 'custom-page-size', memory: index },
      });
    }
    if (l.min > maxPages) {
      throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `memory ${index} needs at least ${l.min} pages; the limit is ${maxPages} pages`, {
        details: { memory: index, min: l.min, limit: maxPages },
      });
    }
    const max = l.max === undefined ? maxPages : Math.min(l.max, maxPages);
    memories.push({ ...info, max });
    return [l.flags | 0x01, ...encodeU(l.min), ...encodeU(max)];
  };

  for (const s of sections) {
    if (s.id === SectionId.Import) {
      const out: number[] = [];
      const entries = readImports(bytes, s);
      out.push(...encodeU(entries.length));
      let mem = 0;
      for (const e of entries) {
        if (e.kind === 'func') importedFuncs++;
        if (e.kind === 'global') importedGlobals++;
        if (e.kind === 'memory' && e.limits !== undefined) {
          for (let i = e.start; i < e.descStart; i++) out.push(bytes[i]!);
          out.push(...clamp(e.limits, mem++, true));
        } else {
          for (let i = e.start; i < e.end; i++) out.push(bytes[i]!);
        }
      }
      replaced.set(s, out);
    }
  }
  for (const s of sections) {
    if (s.id === SectionId.Memory) {
      const limits = readMemories(bytes, s);
      const out: number[] = [...encodeU(limits.length)];
      for (const l of limits) out.push(...clamp(l, memories.length, false));
      replaced.set(s, out);
    }
  }

  let instrumented = false;
  let grows = 0;
  if (options.instrument !== false && memories.length > 0) {
    const plan = planInstrumentation(bytes, sections, memories.length, importedFuncs, importedGlobals);
    if (plan !== null) {
      grows = plan.grows;
      if (plan.grows > 0) {
        for (const [s, content] of plan.replaced) replaced.set(s, content);
        instrumented = true;
        return { bytes: assembleModule(bytes, sections, replaced, plan.added), memories, instrumented, grows };
      }
    }
  }
  return { bytes: assembleModule(bytes, sections, replaced, []), memories, instrumented, grows };
}

/**
 * The pages a refused `memory.grow` of an instrumented module asked for, or 0 when none was refused.
 * @param exports - the instance's exports
 * @returns pages requested by the last refused grow, or 0 (also 0 for modules that are not instrumented)
 */
export function memoryExceeded(exports: WebAssembly.Exports): number {
  const g = exports[MEMORY_EXCEEDED_EXPORT];
  if (g instanceof WebAssembly.Global) {
    const v: unknown = g.value;
    return typeof v === 'number' ? v >>> 0 : 0;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Instrumentation of memory.grow

interface Plan {
  readonly grows: number;
  readonly replaced: Map<RawSection, number[]>;
  readonly added: { id: number; content: number[] }[];
}

class Unsupported extends Error {}

function unsupported(): never {
  throw new Unsupported();
}

/** Count entries of a vector section and return them with the offset after the count. */
function vecHeader(bytes: Uint8Array, s: RawSection | undefined): { count: number; rest: Uint8Array } {
  if (s === undefined) return { count: 0, rest: new Uint8Array(0) };
  const r = new WasmReader(bytes, s.start, s.end);
  const count = r.u32();
  return { count, rest: bytes.subarray(r.pos, s.end) };
}

function planInstrumentation(bytes: Uint8Array, sections: readonly RawSection[], memoryCount: number, importedFuncs: number, importedGlobals: number): Plan | null {
  const find = (id: number): RawSection | undefined => sections.find((s) => s.id === id);
  const typeS = find(SectionId.Type);
  const funcS = find(SectionId.Function);
  const globalS = find(SectionId.Global);
  const exportS = find(SectionId.Export);
  const codeS = find(SectionId.Code);
  if (typeS === undefined || funcS === undefined || codeS === undefined) return { grows: 0, replaced: new Map(), added: [] };
  try {
    // Types: only plain function types are counted (GC rec groups shift indices differently).
    const tr = new WasmReader(bytes, typeS.start, typeS.end);
    const typeCount = tr.u32();
    for (let i = 0; i < typeCount; i++) {
      if (tr.u8() !== 0x60) unsupported();
      for (let k = 0; k < 2; k++) {
        const n = tr.u32();
        for (let j = 0; j < n; j++) skipValType(tr);
      }
    }
    const definedFuncs = vecHeader(bytes, funcS).count;
    const definedGlobals = vecHeader(bytes, globalS).count;
    if (exportS !== undefined && readExports(bytes, exportS).some((e) => e.name === MEMORY_EXCEEDED_EXPORT)) unsupported();
    const hookBase = importedFuncs + definedFuncs;
    const globalIndex = importedGlobals + definedGlobals;

    // Code: copy each body, replacing `memory.grow m` with `call hook(m)`.
    const cr = new WasmReader(bytes, codeS.start, codeS.end);
    const bodies = cr.u32();
    if (bodies !== definedFuncs) cr.fail('function and code section counts differ');
    const code: number[] = [...encodeU(bodies + memoryCount)];
    let grows = 0;
    for (let i = 0; i < bodies; i++) {
      const size = cr.u32();
      const start = cr.pos;
      cr.skip(size);
      const body: number[] = [];
      let copied = start;
      const n = scanBody(bytes, start, start + size, (opAt, memidx, after) => {
        if (memidx >= memoryCount) unsupported();
        for (let k = copied; k < opAt; k++) body.push(bytes[k]!);
        body.push(0x10, ...encodeU(hookBase + memidx));
        copied = after;
      });
      grows += n;
      for (let k = copied; k < start + size; k++) body.push(bytes[k]!);
      code.push(...encodeU(body.length), ...body);
    }
    if (grows === 0) return { grows: 0, replaced: new Map(), added: [] };
    const g = encodeU(globalIndex);
    for (let m = 0; m < memoryCount; m++) {
      const body = [0x01, 0x01, 0x7f, 0x20, 0x00, 0x40, ...encodeU(m), 0x22, 0x01, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x20, 0x00, 0x24, ...g, 0x0b, 0x20, 0x01, 0x0b];
      code.push(...encodeU(body.length), ...body);
    }

    const replaced = new Map<RawSection, number[]>();
    const added: { id: number; content: number[] }[] = [];
    const types = vecHeader(bytes, typeS);
    replaced.set(typeS, [...encodeU(types.count + 1), ...types.rest, 0x60, 0x01, 0x7f, 0x01, 0x7f]);
    const funcs = vecHeader(bytes, funcS);
    const hookTypes: number[] = [];
    for (let m = 0; m < memoryCount; m++) hookTypes.push(...encodeU(typeCount));
    replaced.set(funcS, [...encodeU(funcs.count + memoryCount), ...funcs.rest, ...hookTypes]);
    const globalEntry = [0x7f, 0x01, 0x41, 0x00, 0x0b];
    if (globalS === undefined) added.push({ id: SectionId.Global, content: [0x01, ...globalEntry] });
    else {
      const gl = vecHeader(bytes, globalS);
      replaced.set(globalS, [...encodeU(gl.count + 1), ...gl.rest, ...globalEntry]);
    }
    const exportEntry = [...encodeName(MEMORY_EXCEEDED_EXPORT), 0x03, ...g];
    if (exportS === undefined) added.push({ id: SectionId.Export, content: [0x01, ...exportEntry] });
    else {
      const ex = vecHeader(bytes, exportS);
      replaced.set(exportS, [...encodeU(ex.count + 1), ...ex.rest, ...exportEntry]);
    }
    replaced.set(codeS, code);
    return { grows, replaced, added };
  } catch (e) {
    if (e instanceof Unsupported) return null;
    throw e;
  }
}

function skipMemarg(r: WasmReader): void {
  const align = r.u32();
  if ((align & 0x40) !== 0) r.u32();
  r.skipLeb(10);
}

function skipBlockType(r: WasmReader): void {
  const b = r.bytes[r.pos];
  if (b === 0x63 || b === 0x64) skipValType(r);
  else r.skipLeb(5);
}

/**
 * Decode one function body's instructions, reporting every `memory.grow`.
 * @returns the number of `memory.grow` instructions
 */
function scanBody(bytes: Uint8Array, start: number, end: number, onGrow: (opAt: number, memidx: number, after: number) => void): number {
  const r = new WasmReader(bytes, start, end);
  const groups = r.u32();
  for (let i = 0; i < groups; i++) {
    r.u32();
    skipValType(r);
  }
  let grows = 0;
  while (r.pos < end) {
    const at = r.pos;
    const op = r.u8();
    if ((op >= 0x45 && op <= 0xc4) || op <= 0x01 || op === 0x05 || op === 0x0a || op === 0x0b || op === 0x0f || op === 0x19 || op === 0x1a || op === 0x1b || op === 0xd1 || op === 0xd3 || op === 0xd4) continue;
    switch (op) {
      case 0x02:
      case 0x03:
      case 0x04:
      case 0x06:
        skipBlockType(r);
        break;
      case 0x07:
      case 0x08:
      case 0x09:
      case 0x0c:
      case 0x0d:
      case 0x10:
      case 0x12:
      case 0x14:
      case 0x15:
      case 0x18:
      case 0x20:
      case 0x21:
      case 0x22:
      case 0x23:
      case 0x24:
      case 0x25:
      case 0x26:
      case 0xd2:
      case 0xd5:
      case 0xd6:
        r.u32();
        break;
      case 0x11:
      case 0x13:
        r.u32();
        r.u32();
        break;
      case 0x0e: {
        const n = r.u32();
        for (let k = 0; k <= n; k++) r.u32();
        break;
      }
      case 0x1c: {
        const n = r.u32();
        for (let k = 0; k < n; k++) skipValType(r);
        break;
      }
      case 0x1f: {
        skipBlockType(r);
        const n = r.u32();
        for (let k = 0; k < n; k++) {
          const kind = r.u8();
          if (kind <= 1) r.u32();
          else if (kind > 3) unsupported();
          r.u32();
        }
        break;
      }
      case 0x3f:
        r.u32();
        break;
      case 0x40: {
        const memidx = r.u32();
        grows++;
        onGrow(at, memidx, r.pos);
        break;
      }
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
      case 0xd0:
        r.skipLeb(5);
        break;
      case 0xfc: {
        const sub = r.u32();
        if (sub <= 7) break;
        if (sub === 8 || sub === 10 || sub === 12 || sub === 14) {
          r.u32();
          r.u32();
        } else if (sub === 9 || sub === 11 || sub === 13 || sub === 15 || sub === 16 || sub === 17) r.u32();
        else unsupported();
        break;
      }
      case 0xfd: {
        const sub = r.u32();
        if (sub <= 11 || sub === 92 || sub === 93) skipMemarg(r);
        else if (sub === 12 || sub === 13) r.skip(16);
        else if (sub >= 21 && sub <= 34) r.skip(1);
        else if (sub >= 84 && sub <= 91) {
          skipMemarg(r);
          r.skip(1);
        }
        break;
      }
      case 0xfe: {
        const sub = r.u32();
        if (sub === 3) r.skip(1);
        else if (sub <= 2 || (sub >= 0x10 && sub <= 0x4e)) skipMemarg(r);
        else unsupported();
        break;
      }
      default:
        if (op >= 0x28 && op <= 0x3e) skipMemarg(r);
        else unsupported();
    }
  }
  return grows;
}
