import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxPool, type SandboxPool } from '../../src/sandbox/index.js';
import { buildWorker, fixture, rejection, wat } from './helpers.js';

let built: Awaited<ReturnType<typeof buildWorker>>;
let pool: SandboxPool;

beforeAll(async () => {
  built = await buildWorker();
  pool = createSandboxPool({ size: 1, maxContainers: 4, workerUrl: built.url, limits: { maxMemoryBytes: 1024 * 1024 } });
});

afterAll(async () => {
  await pool?.close();
  built?.cleanup();
});

const GROWER = `(module
  (memory (export "memory") 1)
  ;; Asks for 4 GiB, and traps when refused (what an allocator's abort does).
  (func (export "huge") (result i32)
    (if (i32.eq (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))
    (i32.const 0))
  ;; Grows within the limit, then past it, and reports both results without trapping.
  (func (export "steps") (result i32)
    (i32.add
      (i32.mul (memory.grow (i32.const 15)) (i32.const 1000))
      (memory.grow (i32.const 1)))))`;

describe('memory limits', () => {
  it('ends a guest that tries to allocate 4 GiB with SANDBOX_MEMORY_EXCEEDED', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(GROWER), entry: 'huge' } });
    const e = await rejection(c.result);
    expect(e).toMatchObject({ code: 'SANDBOX_MEMORY_EXCEEDED', details: { requestedPages: 65535, limitPages: 16 } });
  });

  it('lets memory grow up to the limit and fails growth beyond it', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(GROWER), entry: 'steps' } });
    const r = await c.result;
    expect(r.value).toBe(1 * 1000 - 1); // first grow returned the old size 1, the second -1
    expect(r.stats.memoryPages).toBe(16);
  });

  it('refuses to instantiate a module whose memory minimum is above the limit', async () => {
    const defined = pool.start({ runner: 'builtin:core', data: { module: await wat('(module (memory 17))'), entry: 'x' } });
    expect(await rejection(defined.result)).toMatchObject({ code: 'SANDBOX_MEMORY_EXCEEDED', details: { min: 17, limit: 16 } });
    const imported = pool.start({ runner: 'builtin:core', data: { module: await wat('(module (import "env" "memory" (memory 40)))'), entry: 'x' } });
    expect((await rejection(imported.result)).code).toBe('SANDBOX_MEMORY_EXCEEDED');
  });

  it('limits an imported memory the runner supplies', async () => {
    const guest = await wat(`(module
      (import "env" "memory" (memory 2))
      (func (export "main") (result i32) (i32.add (memory.grow (i32.const 14)) (memory.grow (i32.const 1)))))`);
    const c = pool.start({ runner: 'builtin:core', data: { module: guest, entry: 'main' } });
    const r = await c.result;
    expect(r.value).toBe(2 - 1);
    expect(r.stats.memoryPages).toBe(16);
  });

  it('stops a runner that exhausts the worker heap (resourceLimits fence) with SANDBOX_MEMORY_EXCEEDED', async () => {
    const small = createSandboxPool({ size: 0, maxContainers: 1, workerUrl: built.url, resourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 8 } });
    try {
      const c = small.start({ runner: fixture('heap-hog.mjs'), data: null });
      expect((await rejection(c.result)).code).toBe('SANDBOX_MEMORY_EXCEEDED');
    } finally {
      await small.close();
    }
  });
});
