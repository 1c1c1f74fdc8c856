import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ForgeError } from '@forgeone/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORE_REFUSED, createSandboxPool, type SandboxPool } from '../../src/sandbox/index.js';
import { buildWorker, fixture, rejection, testPolicy, wat } from './helpers.js';

let built: Awaited<ReturnType<typeof buildWorker>>;
let pool: SandboxPool;

beforeAll(async () => {
  built = await buildWorker();
  pool = createSandboxPool({ size: 2, maxContainers: 3, workerUrl: built.url, preload: [fixture('bridge-runner.mjs')] });
  await pool.ready();
});

afterAll(async () => {
  await pool?.close();
  built?.cleanup();
});

const HELLO = `(module
  (import "env" "log" (func $log (param i32 i32) (result i32)))
  (import "env" "tick" (func $tick (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello, sandbox")
  (func (export "main") (result i32)
    (drop (call $log (i32.const 16) (i32.const 14)))
    (call $tick))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "trap") (unreachable)))`;

describe('sandbox pool', () => {
  it('runs a core guest in a warm worker, crossing the gate with a real compiled policy', async () => {
    expect(pool.warm).toBe(2);
    const chunks: string[] = [];
    const c = pool.start({
      runner: 'builtin:core',
      data: { module: await wat(HELLO), entry: 'main' },
      policy: testPolicy(),
      onOutput: (_s, b) => chunks.push(new TextDecoder().decode(b)),
    });
    const r = await c.result;
    expect(r.value).toBe(0);
    expect(new TextDecoder().decode(r.stdout)).toBe('hello, sandbox');
    expect(chunks).toEqual(['hello, sandbox']);
    expect(r.stats).toMatchObject({ phase: 'done', calls: 2, outputBytes: 14, memoryPages: 1 });
  });

  it('denies every gated call when the container has no policy (deny by default)', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(HELLO), entry: 'main' } });
    const r = await c.result;
    expect(r.value).toBe(CORE_REFUSED);
    expect(r.stdout.length).toBe(0);
  });

  it('refuses output beyond maxOutputBytes', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(HELLO), entry: 'main' }, policy: testPolicy(), limits: { maxOutputBytes: 10 } });
    const r = await c.result;
    expect(r.stdout.length).toBe(0);
    expect(r.stats.outputBytes).toBe(0);
  });

  it('serves repeated calls and reports traps as WASM_TRAP without ending the container', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(HELLO), serve: true }, policy: testPolicy() });
    await c.serving;
    expect(await c.call('add', [2, 40])).toBe(42);
    expect(await c.call('add', [1, 1])).toBe(2);
    const trap = await rejection(c.call('trap'));
    expect(trap.code).toBe('WASM_TRAP');
    expect(trap.message).toMatch(/unreachable/);
    expect((await rejection(c.call('nope'))).code).toBe('WASM_EXPORT_MISSING');
    expect(await c.call('main')).toBe(0);
    const r = await c.close();
    expect(new TextDecoder().decode(r.stdout)).toBe('hello, sandbox');
  });

  it('refuses containers beyond maxContainers with SANDBOX_LIMIT_EXCEEDED and replaces used workers', async () => {
    const module = await wat(HELLO);
    const held = [0, 1, 2].map(() => pool.start({ runner: 'builtin:core', data: { module, serve: true }, policy: testPolicy() }));
    let refused: unknown;
    try {
      pool.start({ runner: 'builtin:core', data: { module, entry: 'main' } });
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(ForgeError);
    expect((refused as ForgeError).code).toBe('SANDBOX_LIMIT_EXCEEDED');
    expect(() => pool.start({ runner: '', data: null })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    await Promise.all(held.map((c) => c.serving));
    await Promise.all(held.map((c) => c.close()));
    expect(pool.active).toBe(0);
    await pool.ready();
    expect(pool.warm).toBe(2);
  });

  it('rejects bad limits with INVALID_ARGUMENT before taking a worker', () => {
    expect(() => pool.start({ runner: 'builtin:core', data: null, limits: { cpuPerCallMs: -1 } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => pool.start({ runner: 'builtin:core', data: null, limits: { cpuTotalMs: Number.NaN } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(pool.active).toBe(0);
  });

  it('maps guest and runner failures to ForgeErrors and keeps the host alive', async () => {
    const bad = pool.start({ runner: 'builtin:core', data: { module: new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 99]) } });
    expect((await rejection(bad.result)).code).toBe('WASM_INVALID');
    const link = pool.start({ runner: 'builtin:core', data: { module: await wat('(module (import "env" "secret" (func)))'), entry: 'x' } });
    expect((await rejection(link.result)).code).toBe('WASM_LINK_ERROR');
    const trap = pool.start({ runner: 'builtin:core', data: { module: await wat(HELLO), entry: 'trap' } });
    const t = await rejection(trap.result);
    expect(t.code).toBe('WASM_TRAP');
    expect(t.message).toMatch(/unreachable/);
    const thrown = pool.start({ runner: fixture('throwing-runner.mjs'), data: null });
    expect(await rejection(thrown.result)).toMatchObject({ code: 'CONTAINER_FAILED', message: expect.stringMatching(/runner exploded/) });
    const exited = pool.start({ runner: fixture('exit-runner.mjs'), data: null });
    expect((await rejection(exited.result)).code).toBe('CONTAINER_FAILED');
    const missing = pool.start({ runner: fixture('does-not-exist.mjs'), data: null });
    expect((await rejection(missing.result)).code).toBe('NOT_FOUND');
  });

  it('bridges synchronous worker calls to async main-thread handlers (timer, real HTTP, errors, timeout)', async () => {
    const server = createServer((req, res) => {
      setTimeout(() => res.end(`pong ${req.url}`), 20);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ping`;
    try {
      const c = pool.start({
        runner: fixture('bridge-runner.mjs'),
        data: { url },
        limits: { maxOpenFiles: 7 },
        handlers: {
          sleep: (ms) => new Promise((r) => setTimeout(() => r(`slept ${String(ms)}`), Number(ms))),
          'http.get': async (u) => (await fetch(String(u))).text(),
          fail: async () => {
            throw new ForgeError('POLICY_DENIED', 'kv access denied by the kernel');
          },
          throwPlain: async () => {
            throw new Error('boom');
          },
          echo: async (x) => x,
        },
      });
      const { value } = await c.result;
      expect(value).toMatchObject({
        slept: { ok: true, value: 'slept 120' },
        http: { ok: true, value: 'pong /ping' },
        failing: { ok: false, code: 'POLICY_DENIED', message: 'kv access denied by the kernel' },
        plain: { ok: false, code: 'INTERNAL', message: 'boom' },
        missing: { ok: false, code: 'NOT_FOUND' },
        timeout: { ok: false, code: 'SANDBOX_TIMEOUT' },
        afterTimeout: { ok: true, value: 'still works' },
        maxOpenFiles: 7,
      });
      expect((value as { waited: number }).waited).toBeGreaterThanOrEqual(100);
    } finally {
      server.close();
    }
  });

  it('lets a core guest read kv through the bridge, gated by the policy', async () => {
    const guest = await wat(`(module
      (import "env" "kv_get" (func $kv (param i32 i32 i32 i32) (result i32)))
      (import "env" "log" (func $log (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "greeting")
      (func (export "main") (result i32)
        (local $n i32)
        (local.set $n (call $kv (i32.const 0) (i32.const 8) (i32.const 64) (i32.const 32)))
        (drop (call $log (i32.const 64) (local.get $n)))
        (local.get $n)))`);
    const seen: unknown[] = [];
    const c = pool.start({
      runner: 'builtin:core',
      data: { module: guest, entry: 'main' },
      policy: testPolicy(),
      handlers: { 'kv.get': async (key) => (seen.push(key), new Promise((r) => setTimeout(() => r('hi there'), 30))) },
    });
    const r = await c.result;
    expect(seen).toEqual(['greeting']);
    expect(r.value).toBe(8);
    expect(new TextDecoder().decode(r.stdout)).toBe('hi there');
  });
});
