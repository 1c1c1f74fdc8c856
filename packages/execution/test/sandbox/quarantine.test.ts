import { setTimeout as sleep } from 'node:timers/promises';
import { parsePolicy } from '@forgeone/trust';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxPool, type SandboxPool, type SandboxedContainer } from '../../src/sandbox/index.js';
import { POLICY_TEXT, buildWorker, fixture, rejection, testPolicy, wat } from './helpers.js';

let built: Awaited<ReturnType<typeof buildWorker>>;
let pool: SandboxPool;

beforeAll(async () => {
  built = await buildWorker();
  pool = createSandboxPool({ size: 2, maxContainers: 4, workerUrl: built.url, preload: [fixture('policy-runner.mjs')] });
  await pool.ready();
});

afterAll(async () => {
  await pool?.close();
  built?.cleanup();
});

// Calls tick() in a loop until 400 ms of wall time have passed (measured through the gated clock), or until
// a call is refused; returns the number of allowed ticks, negated when it stopped on a refusal.
const LOOPER = `(module
  (import "env" "tick" (func $tick (result i32)))
  (import "env" "now" (func $now (result f64)))
  (func (export "main") (result i32)
    (local $n i32) (local $t0 f64)
    (local.set $t0 (call $now))
    (block $done
      (loop $l
        (if (i32.ne (call $tick) (i32.const 0)) (then (return (i32.sub (i32.const 0) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $done (f64.gt (f64.sub (call $now) (local.get $t0)) (f64.const 400)))
        (br $l)))
    (local.get $n)))`;

async function until(c: SandboxedContainer, pred: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (!pred()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(c.stats())}`);
    await sleep(5);
  }
}

describe('quarantine', () => {
  it('blocks the next gated call until release, then the guest finishes normally', async () => {
    // A tight per-call budget proves time blocked in quarantine is not charged as guest CPU.
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(LOOPER), entry: 'main' }, policy: testPolicy(), limits: { cpuPerCallMs: 250 } });
    await until(c, () => c.stats().calls > 50, 'the guest to make calls');
    c.quarantine();
    await sleep(30);
    const frozen = c.stats().calls;
    // Held well past the per-call budget (the budget leaves room for a loaded machine descheduling the loop).
    await sleep(600);
    expect(c.stats()).toMatchObject({ state: 'quarantined', calls: frozen, currentRunMs: 0 });
    c.release();
    const r = await c.result;
    expect(r.value as number).toBeGreaterThan(frozen / 2 - 1);
    expect(r.stats.calls).toBeGreaterThan(frozen);
  });

  it('wakes a blocked call on terminate: the call is refused and the container ends with CONTAINER_TERMINATED', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(LOOPER), entry: 'main' }, policy: testPolicy() });
    await until(c, () => c.stats().calls > 50, 'the guest to make calls');
    c.quarantine();
    await sleep(50);
    const frozen = c.stats().calls;
    await sleep(50);
    expect(c.stats().calls).toBe(frozen);
    await c.terminate('red zone: suspicious reads');
    const e = await rejection(c.result);
    expect(e).toMatchObject({ code: 'CONTAINER_TERMINATED', details: { reason: 'red zone: suspicious reads' } });
    expect(c.stats().state).toBe('terminated');
  });

  it('quarantines from a policy verdict and lets the kernel release the container', async () => {
    const text = POLICY_TEXT.replace('- { id: log,', '- { id: trap, action: quarantine, syscalls: ["forgeone:log/write"] }\n      - { id: log,');
    const guest = await wat(`(module
      (import "env" "log" (func $log (param i32 i32) (result i32)))
      (import "env" "tick" (func $tick (result i32)))
      (memory (export "memory") 1)
      (func (export "main") (result i32)
        (i32.add (i32.mul (call $log (i32.const 0) (i32.const 1)) (i32.const 10)) (call $tick))))`);
    const c = pool.start({ runner: 'builtin:core', data: { module: guest, entry: 'main' }, policy: testPolicy(text) });
    await until(c, () => c.stats().state === 'quarantined', 'the policy to quarantine the container');
    await sleep(100);
    expect(c.stats().calls).toBe(1);
    c.release();
    const r = await c.result;
    expect(r.value).toBe(-10); // log refused (-1 * 10), then tick allowed after release (0)
  });
});

describe('policy updates while the guest runs', () => {
  it('a guest loop sees a new policy between two calls', async () => {
    const c = pool.start({ runner: 'builtin:core', data: { module: await wat(LOOPER), entry: 'main' }, policy: testPolicy() });
    await until(c, () => c.stats().calls > 40, 'the guest to make calls');
    c.updatePolicy({ document: parsePolicy(POLICY_TEXT.replace('"forgeone:time/now", ', '')).policy });
    const r = await c.result;
    // Stopped on a refusal (negative count), well before its 400 ms were up.
    expect(r.value as number).toBeLessThan(-20);
    expect(r.stats.wallMs).toBeLessThan(5_000);
  });

  it('tells runners about updates (onPolicyUpdate) and applies mode changes', async () => {
    const deny = parsePolicy(POLICY_TEXT.replace('name: sandbox-test', 'name: no-time').replace('"forgeone:time/now", ', '')).policy;
    const c = pool.start({ runner: fixture('policy-runner.mjs'), data: null, policy: { ...testPolicy(), mode: 'enforce' } });
    await until(c, () => c.stats().calls > 100, 'the runner to make calls');
    // Permissive first: a denying policy does not stop the loop yet...
    c.updatePolicy({ mode: 'permissive', document: deny });
    await sleep(50);
    const mid = c.stats().calls;
    await sleep(50);
    expect(c.stats().calls).toBeGreaterThan(mid);
    // ...then enforce: the next call is refused.
    c.updatePolicy({ mode: 'enforce' });
    const r = await c.result;
    expect(r.value).toMatchObject({
      refusal: 'POLICY_DENIED',
      updates: [
        { mode: 'permissive', document: 'no-time' },
        { mode: 'enforce', document: null },
      ],
      polledAfter: false,
    });
  });
});
