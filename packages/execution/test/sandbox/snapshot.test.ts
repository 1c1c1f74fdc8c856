// Snapshots of sandboxed containers: captured between calls by the worker, restored into a new container
// whose gate (and so its records) continues at the snapshot's sequence number.
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import { readSnapshot, writeSnapshot, type SnapshotState } from '@forgeone/observer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunOutcome } from '../../src/component/index.js';
import { decodeBlock, type CallRecord } from '../../src/gate/index.js';
import { COMPONENT_SNAPSHOT_RUNNER, createSandboxPool, type SandboxPool, type SandboxSpec, type SandboxedContainer } from '../../src/sandbox/index.js';
import { watComponent } from '../component/helpers.js';
import { counterComponent } from './counter-component.js';
import { buildWorker, fixture, rejection, testPolicy, wat } from './helpers.js';

let built: Awaited<ReturnType<typeof buildWorker>>;
let pool: SandboxPool;
const crypto = new NodeCryptoProvider();
const kernelKey = new SigningKey(crypto, new Uint8Array(32).fill(3));

beforeAll(async () => {
  built = await buildWorker();
  pool = createSandboxPool({ size: 2, maxContainers: 4, workerUrl: built.url });
  await pool.ready();
}, 120_000);

afterAll(async () => {
  await pool?.close();
  built?.cleanup();
});

/** A counter in a global and in (unexported) memory; every `inc` ticks the clock (one record). */
const COUNTER = `(module
  (import "env" "tick" (func $tick (result i32)))
  (memory 1 4)
  (global $count (mut i32) (i32.const 0))
  (func (export "inc") (result i32)
    (drop (call $tick))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (i32.add (i32.mul (global.get $count) (i32.const 1000)) (i32.load (i32.const 16)))))`;

/** Start a container collecting its decoded records. */
function start(spec: Omit<SandboxSpec, 'onRecords'>): { c: SandboxedContainer; records: CallRecord[] } {
  const records: CallRecord[] = [];
  const c: SandboxedContainer = pool.start({ ...spec, onRecords: (b) => records.push(...decodeBlock(b, c.syscalls)) });
  return { c, records };
}

/** Through the signed file format and back, as the kernel does. */
function viaFile(state: SnapshotState, seq: number): SnapshotState {
  const bytes = writeSnapshot({ ...state, trace: { traceId: 'trc-snapshot-test', seq } }, { signingKey: kernelKey, crypto });
  return readSnapshot(bytes, { trustedKeys: [kernelKey.publicKey], crypto });
}

describe('snapshots of sandboxed core modules', () => {
  it('a container held in the red zone is refused a snapshot at once; released, it is captured', async () => {
    const module = await wat(COUNTER);
    const held = start({ runner: 'builtin:core', data: { module, serve: true, snapshots: true }, policy: testPolicy() });
    await held.c.serving;
    expect(await held.c.call('inc')).toBe(1001);
    held.c.quarantine();
    expect(await rejection(held.c.snapshot())).toMatchObject({ code: 'CONTAINER_QUARANTINED' });
    held.c.release();
    expect((await held.c.snapshot()).seq).toBe(1);
    await held.c.terminate();
  });

  it('a serving counter is captured between calls and goes on counting in a new container, its records continuing at the snapshot seq', async () => {
    const module = await wat(COUNTER);
    const first = start({ runner: 'builtin:core', data: { module, serve: true, snapshots: true }, policy: testPolicy() });
    await first.c.serving;
    for (let i = 1; i <= 3; i++) expect(await first.c.call('inc')).toBe(i * 1000 + i);
    const snap = await first.c.snapshot();
    expect(snap.seq).toBe(3);
    expect(snap.state).toMatchObject({ kind: 'module', container: { id: first.c.id } });
    expect(snap.state.trace).toBeUndefined();
    // Every record before the capture was delivered first.
    expect(first.records.map((r) => r.seq)).toEqual([0, 1, 2]);
    // The first container goes on from its own state.
    expect(await first.c.call('inc')).toBe(4004);
    await first.c.close();

    const second = start({ runner: 'builtin:core', data: { module, serve: true }, policy: testPolicy(), snapshot: viaFile(snap.state, snap.seq) });
    await second.c.serving;
    expect(await second.c.call('inc')).toBe(4004);
    expect(await second.c.call('inc')).toBe(5005);
    await second.c.close();
    expect(second.records.map((r) => [r.seq, r.syscall])).toEqual([
      [3, 'forgeone:time/now'],
      [4, 'forgeone:time/now'],
    ]);
  });

  it('a snapshot of another module is refused before anything runs', async () => {
    const first = start({ runner: 'builtin:core', data: { module: await wat(COUNTER), serve: true, snapshots: true }, policy: testPolicy() });
    await first.c.serving;
    await first.c.call('inc');
    const snap = await first.c.snapshot();
    await first.c.close();
    const other = await wat(COUNTER.replace('(i32.const 1000)', '(i32.const 100)'));
    const second = start({ runner: 'builtin:core', data: { module: other, serve: true }, policy: testPolicy(), snapshot: snap.state });
    expect((await rejection(second.c.result)).code).toBe('SNAPSHOT_MODULE_MISMATCH');
    expect(second.records).toEqual([]);
  });

  it('a container not prepared for snapshots, and a runner that cannot restore, say so', async () => {
    const module = await wat(COUNTER);
    const plain = start({ runner: 'builtin:core', data: { module, serve: true }, policy: testPolicy() });
    await plain.c.serving;
    expect((await rejection(plain.c.snapshot())).code).toBe('SNAPSHOT_UNSUPPORTED');
    // Still serving: a refused capture changes nothing.
    expect(await plain.c.call('inc')).toBe(1001);
    await plain.c.close();
    const state: SnapshotState = { kind: 'module', moduleHash: '0'.repeat(64), container: { id: 'x' }, instances: [{ moduleHash: '0'.repeat(64), memories: [], globals: [] }] };
    const foreign = pool.start({ runner: fixture('exit-runner.mjs'), data: {}, snapshot: state });
    expect((await rejection(foreign.result)).code).toBe('SNAPSHOT_UNSUPPORTED');
    const once = pool.start({ runner: 'builtin:core', data: { module, entry: 'inc' }, policy: testPolicy(), snapshot: state });
    expect((await rejection(once.result)).code).toBe('SNAPSHOT_UNSUPPORTED');
  });

  it('a WASI preview1 reactor is snapshotted between calls and restored without running _initialize again', async () => {
    // _initialize sets the base to 100; inc draws 4 random bytes (recorded) and counts.
    const REACTOR = `(module
      (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (global $base (mut i32) (i32.const 0))
      (global $count (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $base (i32.add (global.get $base) (i32.const 100))))
      (func (export "inc") (result i32)
        (drop (call $random (i32.const 32) (i32.const 4)))
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (i32.add (global.get $base) (global.get $count))))`;
    const module = await wat(REACTOR);
    const first = start({ runner: 'builtin:wasi-p1', data: { module, serve: true, snapshots: true } });
    await first.c.serving;
    expect([await first.c.call('inc'), await first.c.call('inc')]).toEqual([101, 102]);
    const snap = await first.c.snapshot();
    expect(snap.seq).toBe(2);
    await first.c.close();
    const second = start({ runner: 'builtin:wasi-p1', data: { module, serve: true }, snapshot: viaFile(snap.state, snap.seq) });
    await second.c.serving;
    expect(await second.c.call('inc')).toBe(103);
    await second.c.close();
    expect(second.records.map((r) => [r.seq, r.syscall])).toEqual([[2, 'wasi:random/random']]);
  });
});

describe('snapshots of sandboxed components', () => {
  it('builtin:component-snapshot serves a counter, is captured, and a new container goes on from there', async () => {
    const bytes = await watComponent(counterComponent());
    const first = start({ runner: COMPONENT_SNAPSHOT_RUNNER, data: { bytes }, policy: testPolicy() });
    await first.c.serving;
    const values: unknown[] = [];
    for (let i = 0; i < 3; i++) values.push(((await first.c.call('run', '')) as RunOutcome & { ok: true }).value);
    expect(values).toEqual(['0101', '0202', '0303']);
    const snap = await first.c.snapshot();
    expect(snap.seq).toBe(3);
    expect(snap.state.kind).toBe('component');
    await first.c.close();

    const second = start({ runner: COMPONENT_SNAPSHOT_RUNNER, data: { bytes }, policy: testPolicy(), snapshot: viaFile(snap.state, snap.seq) });
    await second.c.serving;
    expect(await second.c.call('run', '')).toEqual({ ok: true, value: '0404' });
    await second.c.close();
    expect(second.records.map((r) => [r.seq, r.syscall])).toEqual([[3, 'forgeone:time/now']]);

    const other = start({ runner: COMPONENT_SNAPSHOT_RUNNER, data: { bytes: await watComponent(counterComponent(2)) }, policy: testPolicy(), snapshot: snap.state });
    expect((await rejection(other.c.result)).code).toBe('SNAPSHOT_MODULE_MISMATCH');
  });
});
