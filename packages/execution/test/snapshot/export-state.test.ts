import { isForgeError } from '@forgeone/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STATE_GLOBAL_EXPORT_PREFIX, STATE_MEMORY_EXPORT_PREFIX, STATE_TAG_EXPORT, exportState, limitMemoryDetailed } from '../../src/binary/index.js';
import { wat } from '../wasi/helpers.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!isForgeError(e)) throw e;
    return e.code;
  }
  return 'none';
}

const MIXED = `(module
  (import "env" "g" (global $ig (mut i32)))
  (import "env" "k" (global $k i32))
  (import "env" "f" (func $f (param i32) (result i32)))
  (table 2 funcref)
  (memory $own 1 3)
  (global $a (mut i32) (i32.const -5))
  (global $b (mut i64) (i64.const 1234567890123))
  (global $c f32 (f32.const 1.5))
  (global $d (mut f64) (f64.const -0.25))
  (global $v (mut v128) (v128.const i32x4 1 2 3 4))
  (global $r funcref (ref.null func))
  (global $e i32 (global.get $k))
  (elem (i32.const 0) $work)
  (func $work (export "work") (param i32) (result i32)
    (global.set $a (i32.add (global.get $a) (local.get 0)))
    (i32.store (i32.const 8) (i32.add (i32.load (i32.const 8)) (i32.const 1)))
    (i32.add (call $f (global.get $a)) (i32.load (i32.const 8))))
  (data (i32.const 0) "own!"))`;

function mixedImports(): { imports: WebAssembly.Imports; seen: number[] } {
  const seen: number[] = [];
  return {
    seen,
    imports: {
      env: {
        g: new WebAssembly.Global({ value: 'i32', mutable: true }, 9),
        k: new WebAssembly.Global({ value: 'i32', mutable: false }, 5),
        f: (x: number) => {
          seen.push(x);
          return x * 2;
        },
      },
    },
  };
}

describe('exportState: the rewritten module exports its state and behaves the same', () => {
  it('records every global and memory (imported ones as such) and exports the defined ones', async () => {
    const original = await wat(MIXED);
    const { bytes, layout } = exportState(original);
    expect(WebAssembly.validate(bytes as BufferSource)).toBe(true);
    expect(layout.globals.map((g) => [g.index, g.type, g.mutable, g.imported, g.export])).toEqual([
      [0, 'i32', true, true, null],
      [1, 'i32', false, true, null],
      [2, 'i32', true, false, `${STATE_GLOBAL_EXPORT_PREFIX}2`],
      [3, 'i64', true, false, `${STATE_GLOBAL_EXPORT_PREFIX}3`],
      [4, 'f32', false, false, `${STATE_GLOBAL_EXPORT_PREFIX}4`],
      [5, 'f64', true, false, `${STATE_GLOBAL_EXPORT_PREFIX}5`],
      [6, 'v128', true, false, `${STATE_GLOBAL_EXPORT_PREFIX}6`],
      [7, 'ref', false, false, `${STATE_GLOBAL_EXPORT_PREFIX}7`],
      [8, 'i32', false, false, `${STATE_GLOBAL_EXPORT_PREFIX}8`],
    ]);
    expect(layout.memories.map((m) => [m.index, m.imported, m.export, m.min, m.max])).toEqual([[0, false, `${STATE_MEMORY_EXPORT_PREFIX}0`, 1, 3]]);
    expect(layout.tables).toBe(1);
    expect(layout.tag).toBeNull();

    const a = mixedImports();
    const b = mixedImports();
    const before = new WebAssembly.Instance(new WebAssembly.Module(original as BufferSource), a.imports);
    const after = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), b.imports);
    const work = (i: WebAssembly.Instance) => i.exports['work'] as (x: number) => number;
    for (const x of [1, 7, -3, 100]) expect(work(after)(x)).toBe(work(before)(x));
    expect(b.seen).toEqual(a.seen);
    expect(Object.keys(before.exports)).toEqual(['work']);
    const ex = after.exports;
    expect((ex[`${STATE_GLOBAL_EXPORT_PREFIX}2`] as WebAssembly.Global).value).toBe(-5 + 1 + 7 - 3 + 100);
    expect((ex[`${STATE_GLOBAL_EXPORT_PREFIX}3`] as WebAssembly.Global).value).toBe(1234567890123n);
    expect((ex[`${STATE_GLOBAL_EXPORT_PREFIX}4`] as WebAssembly.Global).value).toBe(1.5);
    expect((ex[`${STATE_GLOBAL_EXPORT_PREFIX}8`] as WebAssembly.Global).value).toBe(5);
    const mem = ex[`${STATE_MEMORY_EXPORT_PREFIX}0`] as WebAssembly.Memory;
    expect(new TextDecoder().decode(new Uint8Array(mem.buffer, 0, 4))).toBe('own!');
    expect(new Uint32Array(mem.buffer, 8, 1)[0]).toBe(4);
  });

  it('records an imported memory as someone else\'s and exports nothing for it', async () => {
    const original = await wat('(module (import "env" "memory" (memory 1 2)) (global (mut i64) (i64.const 0)))');
    const { bytes, layout } = exportState(original);
    expect(layout.memories).toEqual([{ index: 0, imported: true, export: null, min: 1, max: 2, shared: false, memory64: false }]);
    expect(WebAssembly.Module.exports(new WebAssembly.Module(bytes as BufferSource)).map((e) => e.name)).toEqual([`${STATE_GLOBAL_EXPORT_PREFIX}0`]);
  });

  it('reuses the module\'s own memory export and adds a tag global when asked', async () => {
    const original = await wat('(module (memory (export "memory") 1) (func (export "f") (result i32) (i32.const 3)))');
    const { bytes, layout } = exportState(original, { tag: 0xffff_fffe });
    expect(layout.memories[0]!.export).toBe('memory');
    expect(layout.globals).toEqual([]);
    expect(layout.tag).toBe(0xffff_fffe);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource));
    expect(Object.keys(inst.exports).sort()).toEqual(['f', 'memory', STATE_TAG_EXPORT].sort());
    expect(((inst.exports[STATE_TAG_EXPORT] as WebAssembly.Global).value as number) >>> 0).toBe(0xffff_fffe);
  });

  it('adds the export (and global) sections a module lacks, in the right place', async () => {
    const original = await wat('(module (memory 1) (func $s (i32.store (i32.const 0) (i32.const 42))) (start $s) (data (i32.const 4) "x"))');
    const { bytes, layout } = exportState(original, { tag: 3 });
    expect(WebAssembly.validate(bytes as BufferSource)).toBe(true);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource));
    const mem = inst.exports[layout.memories[0]!.export!] as WebAssembly.Memory;
    expect(new Uint8Array(mem.buffer)[0]).toBe(42);
    expect((inst.exports[STATE_TAG_EXPORT] as WebAssembly.Global).value).toBe(3);
  });

  it('leaves a module with no state alone but for validation', async () => {
    const original = await wat('(module (func (export "f")))');
    const { bytes, layout } = exportState(original);
    expect(Buffer.from(bytes).equals(Buffer.from(original))).toBe(true);
    expect(layout).toEqual({ globals: [], memories: [], tables: 0, tag: null });
  });

  it('composes with the memory limit in either order', async () => {
    const original = await wat('(module (memory 1) (global $g (mut i32) (i32.const 0)) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))');
    const limitedFirst = exportState(limitMemoryDetailed(original, 2).bytes);
    const exportedFirst = limitMemoryDetailed(exportState(original).bytes, 2);
    for (const bytes of [limitedFirst.bytes, exportedFirst.bytes]) {
      const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource));
      const grow = inst.exports['grow'] as (n: number) => number;
      expect(grow(1)).toBe(1);
      expect(grow(1)).toBe(-1); // the limit holds
      expect(inst.exports[`${STATE_GLOBAL_EXPORT_PREFIX}0`]).toBeInstanceOf(WebAssembly.Global);
    }
    // The limit's own global is state too when the limit is written first.
    expect(limitedFirst.layout.globals).toHaveLength(2);
  });

  it('refuses a module rewritten twice, a component, malformed bytes and a bad tag', async () => {
    const original = await wat('(module (global (mut i32) (i32.const 0)))');
    expect(codeOf(() => exportState(exportState(original).bytes))).toBe('SNAPSHOT_UNSUPPORTED');
    expect(codeOf(() => exportState(Uint8Array.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0])))).toBe('WASM_INVALID');
    expect(codeOf(() => exportState(original.subarray(0, original.length - 2)))).toBe('WASM_INVALID');
    expect(codeOf(() => exportState(original, { tag: -1 }))).toBe('INVALID_ARGUMENT');
  });

  it('any number of globals and memories of any kind: valid, every defined one exported', async () => {
    const types = ['i32', 'i64', 'f32', 'f64'] as const;
    const init = { i32: '(i32.const 1)', i64: '(i64.const 2)', f32: '(f32.const 3)', f64: '(f64.const 4)' };
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ type: fc.constantFrom(...types), mutable: fc.boolean(), imported: fc.boolean() }), { maxLength: 8 }),
        fc.boolean(),
        fc.boolean(),
        async (globals, memory, exported) => {
          const imports = globals.filter((g) => g.imported).map((g, i) => `(import "env" "g${i}" (global ${g.mutable ? `(mut ${g.type})` : g.type}))`);
          const defined = globals.filter((g) => !g.imported).map((g) => `(global ${g.mutable ? `(mut ${g.type})` : g.type} ${init[g.type]})`);
          const mem = memory ? `(memory ${exported ? '(export "m") ' : ''}1)` : '';
          const bytes = await wat(`(module ${imports.join(' ')} ${mem} ${defined.join(' ')})`);
          const out = exportState(bytes);
          expect(WebAssembly.validate(out.bytes as BufferSource)).toBe(true);
          const names = WebAssembly.Module.exports(new WebAssembly.Module(out.bytes as BufferSource)).map((e) => e.name);
          expect(names.filter((n) => n.startsWith(STATE_GLOBAL_EXPORT_PREFIX))).toHaveLength(defined.length);
          expect(names.filter((n) => n.startsWith(STATE_MEMORY_EXPORT_PREFIX))).toHaveLength(memory && !exported ? 1 : 0);
          expect(out.layout.globals.filter((g) => g.imported)).toHaveLength(imports.length);
        },
      ),
      { numRuns: 40 },
    );
  });
});
