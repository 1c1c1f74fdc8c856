import { isForgeError } from '@forgeone/common';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { MEMORY_EXCEEDED_EXPORT, inspectModule, limitMemory, limitMemoryDetailed, memoryExceeded } from '../../src/binary/index.js';
import type wabtInit from 'wabt';

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
let wabt: Wabt;
beforeAll(async () => {
  wabt = await (await import('wabt')).default();
});

function wat(text: string, features: Record<string, boolean> = {}): Uint8Array {
  const m = wabt.parseWat('t.wat', text, features);
  try {
    return new Uint8Array(m.toBinary({}).buffer);
  } finally {
    m.destroy();
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!isForgeError(e)) throw new Error(`not a ForgeError: ${String(e)}`);
    return e.code;
  }
  return 'none';
}

interface Shape {
  imported: boolean;
  min: number;
  max: number | undefined;
  limit: number;
  extras: boolean;
  globals: number;
}

function shapeWat(s: Shape): string {
  const limits = `${s.min}${s.max === undefined ? '' : ` ${s.max}`}`;
  const mem = s.imported ? `(import "env" "memory" (memory ${limits}))` : `(memory (export "memory") ${limits})`;
  const globals = Array.from({ length: s.globals }, (_, i) => `(global $g${i} (mut i32) (i32.const ${i}))`).join('\n');
  const extras = s.extras
    ? `
    (func $mix (param i32) (result i64)
      (local f64)
      (block $b (loop $l
        (br_table $b $l $b (i32.const 0))))
      (i64.store offset=8 (i32.const 0) (i64.const -123456789012))
      (local.set 1 (f64.const 1.5))
      (drop (memory.size))
      (if (result i64) (local.get 0) (then (i64.load offset=8 (i32.const 0))) (else (i64.const 7))))
    (func (export "grow2") (param i32) (result i32) (drop (call $mix (i32.const 1))) (memory.grow (local.get 0)))`
    : '';
  return `(module
    (import "env" "f" (func $f (param i32)))
    ${mem}
    ${globals}
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "size") (result i32) (memory.size))
    ${extras}
    (func (export "call") (call $f (i32.const 1))))`;
}

const shape = fc
  .record({
    imported: fc.boolean(),
    min: fc.integer({ min: 0, max: 6 }),
    maxExtra: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
    limitExtra: fc.integer({ min: 0, max: 20 }),
    extras: fc.boolean(),
    globals: fc.integer({ min: 0, max: 3 }),
  })
  .map((r): Shape => ({
    imported: r.imported,
    min: r.min,
    max: r.maxExtra === undefined ? undefined : r.min + r.maxExtra,
    limit: r.min + r.limitExtra,
    extras: r.extras,
    globals: r.globals,
  }));

describe('limitMemory', () => {
  it('keeps generated modules valid, clamps every memory and makes growth beyond the limit fail', async () => {
    await fc.assert(
      fc.asyncProperty(shape, async (s) => {
        const original = wat(shapeWat(s));
        const limited = limitMemoryDetailed(original, s.limit);
        expect(WebAssembly.validate(limited.bytes as BufferSource)).toBe(true);
        const effective = s.max === undefined ? s.limit : Math.min(s.max, s.limit);
        expect(inspectModule(limited.bytes).memories).toEqual([expect.objectContaining({ imported: s.imported, min: s.min, max: effective })]);
        expect(limited.instrumented).toBe(true);
        const env: Record<string, unknown> = { f: () => undefined };
        if (s.imported) env.memory = new WebAssembly.Memory({ initial: s.min, maximum: effective });
        const { instance } = await WebAssembly.instantiate(limited.bytes as BufferSource, { env: env as WebAssembly.ModuleImports });
        const grow = instance.exports.grow as (n: number) => number;
        const size = instance.exports.size as () => number;
        expect(memoryExceeded(instance.exports)).toBe(0);
        expect(grow(effective - s.min + 1)).toBe(-1);
        expect(memoryExceeded(instance.exports)).toBe(effective - s.min + 1);
        expect(grow(65536)).toBe(-1);
        expect(memoryExceeded(instance.exports)).toBe(65536);
        if (effective > s.min) expect(grow(effective - s.min)).toBe(s.min);
        expect(size()).toBe(effective);
        if (s.extras && effective >= 1) expect((instance.exports.grow2 as (n: number) => number)(1)).toBe(-1);
      }),
      { numRuns: 60 },
    );
  });

  it('adds a maximum where none was declared and keeps a smaller declared one', () => {
    const none = limitMemory(wat('(module (memory 1))'), 10);
    expect(inspectModule(none).memories[0]).toMatchObject({ min: 1, max: 10 });
    const smaller = limitMemory(wat('(module (memory 1 3))'), 10);
    expect(inspectModule(smaller).memories[0]).toMatchObject({ min: 1, max: 3 });
    // No memory.grow in the code: nothing to instrument, nothing exported.
    expect(inspectModule(none).exports.some((e) => e.name === MEMORY_EXCEEDED_EXPORT)).toBe(false);
  });

  it('refuses a memory whose minimum is above the limit with SANDBOX_MEMORY_EXCEEDED', () => {
    expect(codeOf(() => limitMemory(wat('(module (memory 20))'), 10))).toBe('SANDBOX_MEMORY_EXCEEDED');
    expect(codeOf(() => limitMemory(wat('(module (import "env" "m" (memory 11)))'), 10))).toBe('SANDBOX_MEMORY_EXCEEDED');
  });

  it('refuses memory64, clamps shared memories, and rejects bad limits', () => {
    const m64 = wat('(module (memory i64 1))', { memory64: true });
    expect(codeOf(() => limitMemory(m64, 10))).toBe('WASM_INVALID');
    const shared = limitMemory(wat('(module (memory 1 100 shared))', { threads: true }), 10);
    expect(inspectModule(shared).memories[0]).toMatchObject({ shared: true, max: 10 });
    expect(WebAssembly.validate(shared as BufferSource)).toBe(true);
    expect(codeOf(() => limitMemory(wat('(module)'), -1))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => limitMemory(wat('(module)'), 65537))).toBe('INVALID_ARGUMENT');
  });

  it('instruments SIMD, bulk-memory and multi-function code correctly', async () => {
    const bytes = wat(`(module
      (memory 1)
      (func $a (param i32) (result i32)
        (v128.store (i32.const 0) (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (v128.const i32x4 1 2 3 4) (v128.const i32x4 5 6 7 8)))
        (memory.fill (i32.const 16) (i32.const 7) (i32.const 4))
        (memory.copy (i32.const 32) (i32.const 16) (i32.const 4))
        (drop (i32x4.extract_lane 1 (v128.load (i32.const 0))))
        (memory.grow (local.get 0)))
      (func (export "g") (param i32) (result i32) (i32.add (call $a (local.get 0)) (i32.const 0)))
      (func (export "peek") (result i32) (i32.load (i32.const 32))))`);
    const limited = limitMemoryDetailed(bytes, 2);
    expect(limited.grows).toBe(1);
    const { instance } = await WebAssembly.instantiate(limited.bytes as BufferSource);
    const g = instance.exports.g as (n: number) => number;
    expect(g(1)).toBe(1);
    expect(g(1)).toBe(-1);
    expect(memoryExceeded(instance.exports)).toBe(1);
    expect((instance.exports.peek as () => number)()).toBe(0x07070707);
  });

  it('turns malformed bytes into WASM_INVALID and never throws anything else', () => {
    expect(codeOf(() => limitMemory(new Uint8Array([1, 2, 3]), 1))).toBe('WASM_INVALID');
    const valid = wat(shapeWat({ imported: false, min: 1, max: 4, limit: 2, extras: true, globals: 1 }));
    expect(codeOf(() => limitMemory(valid.subarray(0, valid.length - 3), 2))).toBe('WASM_INVALID');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, byte, truncate) => {
        const bad = truncate ? valid.slice(0, at) : valid.slice();
        if (!truncate) bad[at] = byte;
        const code = codeOf(() => limitMemory(bad, 2));
        expect(['none', 'WASM_INVALID', 'SANDBOX_MEMORY_EXCEEDED']).toContain(code);
        if (code === 'none') expect(WebAssembly.validate(limitMemory(bad, 2) as BufferSource)).toBe(true);
      }),
      { numRuns: 300 },
    );
    // Without the validation pass, the structural parser alone still only throws ForgeErrors.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), (tail) => {
        const bad = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...tail]);
        const code = codeOf(() => limitMemoryDetailed(bad, 2, { validate: false }));
        expect(['none', 'WASM_INVALID', 'SANDBOX_MEMORY_EXCEEDED']).toContain(code);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses components with WASM_INVALID', () => {
    expect(codeOf(() => limitMemory(new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]), 1))).toBe('WASM_INVALID');
  });
});
