import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoarseClock } from '../../src/gate/index.js';
import { createSandboxPool, type SandboxPool } from '../../src/sandbox/index.js';
import { buildWorker, rejection, testPolicy, wat } from './helpers.js';

let built: Awaited<ReturnType<typeof buildWorker>>;
let pool: SandboxPool;

beforeAll(async () => {
  built = await buildWorker();
  pool = createSandboxPool({ size: 2, maxContainers: 4, workerUrl: built.url });
  await pool.ready();
});

afterAll(async () => {
  await pool?.close();
  built?.cleanup();
});

const GUESTS = `(module
  (import "env" "tick" (func $tick (result i32)))
  (import "env" "kv_get" (func $kv (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "spin") (loop $l (br $l)))
  ;; Calls the host forever: each guest run is short, the total grows.
  (func (export "chatty") (loop $l (drop (call $tick)) (br $l)))
  ;; Some honest work with host calls in between.
  (func (export "work") (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $i))))
      (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 1000))) (then (drop (call $tick))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 200000))))
    (i32.const 7))
  ;; Blocks in a host call (the bridge handler takes its time), then returns.
  (func (export "wait") (result i32) (call $kv (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 8))))`;

describe('CPU budgets', () => {
  it('terminates an infinite loop at the per-call budget while a well-behaved neighbour completes', async () => {
    const module = await wat(GUESTS);
    const t0 = performance.now();
    const bad = pool.start({ runner: 'builtin:core', data: { module, entry: 'spin' }, policy: testPolicy(), limits: { cpuPerCallMs: 300 } });
    const good = pool.start({ runner: 'builtin:core', data: { module, entry: 'work' }, policy: testPolicy(), limits: { cpuPerCallMs: 300 } });
    const [b, g] = await Promise.allSettled([rejection(bad.result), good.result]);
    expect(b.status === 'fulfilled' && b.value).toMatchObject({ code: 'SANDBOX_CPU_EXCEEDED', details: { budget: 'per-call', limitMs: 300 } });
    expect(g.status === 'fulfilled' && g.value.value).toBe(7);
    expect(g.status === 'fulfilled' && g.value.stats.calls).toBe(200);
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(bad.stats().phase).toBe('failed');
  });

  it('terminates a guest that keeps calling the host at the container budget', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(GUESTS), entry: 'chatty' }, policy: testPolicy(), limits: { cpuPerCallMs: 5_000, cpuTotalMs: 300 } });
    const e = await rejection(c.result);
    expect(e).toMatchObject({ code: 'SANDBOX_CPU_EXCEEDED', details: { budget: 'total', limitMs: 300 } });
    expect(c.stats().calls).toBeGreaterThan(100);
  });

  it('does not count time blocked in host calls against the budgets', async () => {
    const c = pool.start({
      runner: 'builtin:core',
      data: { module: await wat(GUESTS), entry: 'wait' },
      policy: testPolicy(),
      limits: { cpuPerCallMs: 100, cpuTotalMs: 100 },
      handlers: { 'kv.get': () => new Promise((r) => setTimeout(() => r('x'), 400)) },
    });
    const r = await c.result;
    expect(r.value).toBe(1);
    expect(r.stats.wallMs).toBeGreaterThanOrEqual(400);
    expect(r.stats.guestMs).toBeLessThan(100);
  });

  it('ends a container at its wall-clock limit with SANDBOX_TIMEOUT', async () => {
    const c = pool.start({
      runner: 'builtin:core',
      data: { module: await wat(GUESTS), entry: 'wait' },
      policy: testPolicy(),
      limits: { timeoutMs: 200 },
      handlers: { 'kv.get': () => new Promise((r) => setTimeout(() => r('x'), 5_000)) },
    });
    expect((await rejection(c.result)).code).toBe('SANDBOX_TIMEOUT');
  });

  it('fails a serving container whose call spins, rejecting the call with SANDBOX_CPU_EXCEEDED', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(GUESTS), serve: true }, policy: testPolicy(), limits: { cpuPerCallMs: 200 } });
    await c.serving;
    expect(await c.call('work')).toBe(7);
    expect((await rejection(c.call('spin'))).code).toBe('SANDBOX_CPU_EXCEEDED');
    expect((await rejection(c.result)).code).toBe('SANDBOX_CPU_EXCEEDED');
    expect((await rejection(c.call('work'))).code).toBe('CONTAINER_TERMINATED');
  });

  it('enforces budgets with time read from a shared coarse clock', async () => {
    const clock = createCoarseClock(1);
    const coarse = createSandboxPool({ size: 0, maxContainers: 2, workerUrl: built.url, clockBuffer: clock.buffer });
    try {
      const module = await wat(GUESTS);
      const bad = coarse.start({ runner: 'builtin:core', data: { module, entry: 'spin' }, policy: testPolicy(), limits: { cpuPerCallMs: 200 } });
      const good = coarse.start({ runner: 'builtin:core', data: { module, entry: 'work' }, policy: testPolicy(), limits: { cpuPerCallMs: 200 } });
      expect((await rejection(bad.result)).code).toBe('SANDBOX_CPU_EXCEEDED');
      const r = await good.result;
      expect(r.value).toBe(7);
      expect(r.stats.guestMs).toBeLessThan(200);
    } finally {
      await coarse.close();
      await clock.stop();
    }
  });
});
