import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELLO_DIR, tempDir } from './helpers.js';

// Node has WebAssembly, but the ES2023 lib (no DOM) and @types/node 20 do not declare it.
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  instantiate(bytes: Uint8Array): Promise<{ instance: { exports: Record<string, unknown> } }>;
}
const { WebAssembly: wasm } = globalThis as unknown as { WebAssembly: WasmApi };

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(async () => cleanup());

describe('test/fixtures/hello-core/hello.wasm', () => {
  it('is a valid module whose add(i32, i32) adds', async () => {
    const bytes = await readFile(join(HELLO_DIR, 'hello.wasm'));
    expect(wasm.validate(bytes)).toBe(true);
    const { instance } = await wasm.instantiate(bytes);
    const add = instance.exports.add as (a: number, b: number) => number;
    expect(add(2, 40)).toBe(42);
    expect(add(0x7fffffff, 1)).toBe(-0x80000000); // i32 wraps
  });

  it('is exactly what make-wasm.mjs writes', async () => {
    const out = join(dir, 'regenerated.wasm');
    const r = spawnSync(process.execPath, [join(HELLO_DIR, 'make-wasm.mjs'), out], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(Buffer.compare(await readFile(out), await readFile(join(HELLO_DIR, 'hello.wasm')))).toBe(0);
  });

  it('matches the manifest template', async () => {
    const template = JSON.parse(await readFile(join(HELLO_DIR, 'forgepkg.json'), 'utf8')) as Record<string, unknown>;
    expect(template).toMatchObject({ name: 'hello', version: '1.0.0', author: 'ForgeOne', entry: 'hello.wasm', capabilities: ['wasi:cli/stdout'] });
  });
});
