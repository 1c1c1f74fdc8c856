import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isForgeError } from '@forgeone/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ComponentCache,
  buildComponentImports,
  runComponent,
  sha3Hex,
  transpileComponent,
  type ComponentImports,
} from '../../src/component/index.js';
import { allowAllExcept, policyGate, watComponent } from './helpers.js';

// A component whose `run` echoes its input with a prefix taken from a data segment (no imports), and one
// whose `run` executes `unreachable`.
const echo = (prefix: string): string => `
(component
  (core module $m
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (data (i32.const 16) "${prefix}")
    (func $realloc (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $p))
    ;; run(ptr, len) -> retptr: result<string, string> = ok(prefix ++ input)
    (func (export "run") (param $ptr i32) (param $len i32) (result i32)
      (local $out i32)
      (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.add (local.get $len) (i32.const ${prefix.length}))))
      (memory.copy (local.get $out) (i32.const 16) (i32.const ${prefix.length}))
      (memory.copy (i32.add (local.get $out) (i32.const ${prefix.length})) (local.get $ptr) (local.get $len))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.store (i32.const 4) (local.get $out))
      (i32.store (i32.const 8) (i32.add (local.get $len) (i32.const ${prefix.length})))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func (export "run") (param "input" string) (result (result string (error string)))
    (canon lift (core func $i "run") (memory $i "memory") (realloc (func $i "realloc")))))
`;

const TRAP = `
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64))
    (func (export "run") (param i32 i32) (result i32) unreachable))
  (core instance $i (instantiate $m))
  (func (export "run") (param "input" string) (result (result string (error string)))
    (canon lift (core func $i "run") (memory $i "memory") (realloc (func $i "realloc")))))
`;

let dir: string;
let echoBytes: Uint8Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forgeone-loader-'));
  echoBytes = await watComponent(echo('echo:'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function imports(): ComponentImports {
  return buildComponentImports({ gate: policyGate(allowAllExcept()).gate });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isForgeError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a ForgeError');
}

describe('transpileComponent', () => {
  it('transpiles, runs, and answers the second load of the same bytes from memory', async () => {
    const cache = new ComponentCache();
    const a = await transpileComponent(echoBytes, { cache });
    expect(a.hash).toBe(sha3Hex(echoBytes));
    expect(a.exports).toEqual([['run', 'function']]);
    expect(runComponent(a, imports(), { input: 'hi' })).toEqual({ ok: true, value: 'echo:hi' });
    expect(cache.stats).toMatchObject({ transpiles: 1, memoryHits: 0 });
    const b = await transpileComponent(echoBytes.slice(), { cache });
    expect(cache.stats).toMatchObject({ transpiles: 1, memoryHits: 1 });
    expect(b.coreModules).toBe(a.coreModules);
    expect(runComponent(b, imports(), { input: 'again' })).toEqual({ ok: true, value: 'echo:again' });
  });

  it('caches on disk by SHA3-256, reloads in a fresh cache without transpiling, and rejects tampered files', async () => {
    const first = new ComponentCache();
    const loaded = await transpileComponent(echoBytes, { cache: first, cacheDir: dir });
    expect(first.stats.transpiles).toBe(1);
    const entry = join(dir, loaded.hash);
    const files = await readdir(entry);
    expect(files).toContain('manifest.json');
    expect(files.some((f) => f.endsWith('.js'))).toBe(true);
    expect(files.some((f) => f.endsWith('.wasm'))).toBe(true);

    const second = new ComponentCache();
    const again = await transpileComponent(echoBytes, { cache: second, cacheDir: dir });
    expect(second.stats).toMatchObject({ transpiles: 0, diskHits: 1 });
    expect(runComponent(again, imports(), { input: 'disk' })).toEqual({ ok: true, value: 'echo:disk' });

    // Tamper with a core module: the manifest check refuses the entry and the loader transpiles again.
    const wasm = files.find((f) => f.endsWith('.wasm'))!;
    const bytes = await readFile(join(entry, wasm));
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(join(entry, wasm), bytes);
    const third = new ComponentCache();
    const healed = await transpileComponent(echoBytes, { cache: third, cacheDir: dir });
    expect(third.stats).toMatchObject({ transpiles: 1, diskHits: 0, diskRejected: 1 });
    expect(runComponent(healed, imports(), { input: 'x' })).toEqual({ ok: true, value: 'echo:x' });
    const fourth = new ComponentCache();
    await transpileComponent(echoBytes, { cache: fourth, cacheDir: dir });
    expect(fourth.stats).toMatchObject({ transpiles: 0, diskHits: 1 });
  });

  it('passes every core module through prepareCoreModule, and keeps modules per hook', async () => {
    const cache = new ComponentCache();
    const seen: string[] = [];
    const hook = (name: string, bytes: Uint8Array): Uint8Array => {
      seen.push(name);
      return bytes;
    };
    const a = await transpileComponent(echoBytes, { cache, prepareCoreModule: hook });
    expect(seen.length).toBe(a.coreModules.size);
    expect(seen.every((n) => n.endsWith('.wasm'))).toBe(true);
    const b = await transpileComponent(echoBytes, { cache, prepareCoreModule: hook });
    expect(b.coreModules).toBe(a.coreModules);
    expect(seen.length).toBe(a.coreModules.size);
    const c = await transpileComponent(echoBytes, { cache });
    expect(c.coreModules).not.toBe(a.coreModules);
    expect(cache.stats.transpiles).toBe(1);
    // A hook returning garbage fails the load with WASM_TRANSPILE_FAILED, not a crash.
    const bad = await codeOf(transpileComponent(echoBytes, { cache, prepareCoreModule: () => new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 99]) }));
    expect(bad).toBe('WASM_TRANSPILE_FAILED');
  });

  it('refuses bad bytes with WASM_INVALID or WASM_TRANSPILE_FAILED', async () => {
    const cache = new ComponentCache();
    expect(await codeOf(transpileComponent(new Uint8Array([1, 2, 3]), { cache }))).toBe('WASM_INVALID');
    expect(await codeOf(transpileComponent(new TextEncoder().encode('not wasm at all'), { cache }))).toBe('WASM_INVALID');
    // A core module is not a component.
    expect(await codeOf(transpileComponent(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), { cache }))).toBe('WASM_INVALID');
    // A component header followed by garbage, and a truncated real component.
    const garbage = new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 0xff, 0xff, 0xff, 0x13]);
    expect(['WASM_INVALID', 'WASM_TRANSPILE_FAILED']).toContain(await codeOf(transpileComponent(garbage, { cache })));
    const truncated = echoBytes.slice(0, Math.floor(echoBytes.length / 2));
    expect(['WASM_INVALID', 'WASM_TRANSPILE_FAILED']).toContain(await codeOf(transpileComponent(truncated, { cache })));
    expect(await codeOf(transpileComponent(echoBytes, { cache, maxBytes: 10 }))).toBe('LIMIT_EXCEEDED');
    expect(cache.size).toBe(0);
  });
});

describe('runComponent', () => {
  it('maps a trap to WASM_TRAP naming it, and a missing export to WASM_EXPORT_MISSING', async () => {
    const loaded = await transpileComponent(await watComponent(TRAP));
    let err: unknown;
    try {
      runComponent(loaded, imports(), { input: 'x' });
    } catch (e) {
      err = e;
    }
    expect(isForgeError(err) && err.code).toBe('WASM_TRAP');
    expect(isForgeError(err) && String(err.details?.['trap'])).toMatch(/unreachable/);
    expect(() => runComponent(loaded, imports(), { input: 'x', export: 'main' })).toThrow(expect.objectContaining({ code: 'WASM_EXPORT_MISSING' }));
  });
});
