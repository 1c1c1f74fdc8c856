import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isForgeError } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import { readSnapshotFile, writeSnapshotFile, type SnapshotState } from '@forgeone/observer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE_MEMORY_EXPORT_PREFIX } from '../../src/binary/index.js';
import { createSnapshotter, instantiateWithSnapshot, planRestore, prepareSnapshotModule, type SnapshotModule, type SnapshotModuleInstance } from '../../src/snapshot/index.js';
import { createPreview1Host } from '../../src/wasi/index.js';
import { allowAllGate, tempDir, wat } from '../wasi/helpers.js';

const crypto = new NodeCryptoProvider();
const kernelKey = new SigningKey(crypto, new Uint8Array(32).fill(7));
const otherKey = new SigningKey(crypto, new Uint8Array(32).fill(9));
const trusted = { trustedKeys: [kernelKey.publicKey], crypto };

/**
 * A counter keeping its count twice: in a mutable global and in linear memory (not exported). At the third
 * call it grows its memory by two pages; every call writes the count into the last word of memory too. It
 * also keeps an i64, an f32 and an f64 running value, and has an immutable global.
 */
const COUNTER = `(module
  (memory 1 8)
  (global $count (mut i32) (i32.const 0))
  (global $sum (mut i64) (i64.const 0))
  (global $half (mut f32) (f32.const 0))
  (global $scale (mut f64) (f64.const 1))
  (global $seed i32 (i32.const 7))
  (data (i32.const 0) "CNTR")
  (func $last (result i32) (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))
  (func (export "inc") (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (global.set $sum (i64.add (global.get $sum) (i64.const 10000000000)))
    (global.set $half (f32.add (global.get $half) (f32.const 0.5)))
    (global.set $scale (f64.mul (global.get $scale) (f64.const -1.5)))
    (if (i32.eq (global.get $count) (i32.const 3)) (then (drop (memory.grow (i32.const 2)))))
    (i32.store (call $last) (global.get $count))
    (global.get $count))
  (func (export "memCount") (result i32) (i32.load (i32.const 16)))
  (func (export "lastWord") (result i32) (i32.load (call $last)))
  (func (export "pages") (result i32) (memory.size))
  (func (export "sum") (result i64) (global.get $sum))
  (func (export "half") (result f32) (global.get $half))
  (func (export "scale") (result f64) (global.get $scale))
  (func (export "seed") (result i32) (global.get $seed)))`;

/** Another module: same exports, different code. */
const OTHER = COUNTER.replace('(i32.const 7)', '(i32.const 8)');

type Counter = {
  inc(): number;
  memCount(): number;
  lastWord(): number;
  pages(): number;
  sum(): bigint;
  half(): number;
  scale(): number;
  seed(): number;
};
const api = (t: SnapshotModuleInstance): Counter => t.instance.exports as unknown as Counter;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!isForgeError(e)) throw e;
    return e.code;
  }
  return 'none';
}

describe('snapshots of a core module', () => {
  let counterBytes: Uint8Array;
  let otherBytes: Uint8Array;
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    counterBytes = await wat(COUNTER);
    otherBytes = await wat(OTHER);
    tmp = tempDir('forgeone-snapshot-');
  });
  afterAll(() => tmp.cleanup());

  /** Run the counter `n` times and write its snapshot to a signed file; returns the path. */
  async function snapshotAfter(n: number, name: string): Promise<{ path: string; prepared: SnapshotModule; running: SnapshotModuleInstance }> {
    const prepared = await prepareSnapshotModule(counterBytes);
    const running = instantiateWithSnapshot(prepared);
    for (let i = 0; i < n; i++) api(running).inc();
    const state = createSnapshotter().capture(running, { containerId: 'ctr-counter', trace: { traceId: 'tr-counter', seq: n } });
    const path = join(tmp.dir, name);
    await writeSnapshotFile(path, state, { signingKey: kernelKey, crypto });
    return { path, prepared, running };
  }

  it("a counter's state survives a snapshot to a signed file and a restore into a new instance", async () => {
    const { path, running } = await snapshotAfter(5, 'counter.fgsnap');
    expect(api(running).pages()).toBe(3); // grown beyond its initial page

    // A fresh compilation and instantiation of the same original bytes, restored from the file.
    const snapshot = await readSnapshotFile(path, trusted);
    expect(snapshot.trace).toEqual({ traceId: 'tr-counter', seq: 5 });
    expect(snapshot.container.id).toBe('ctr-counter');
    expect(snapshot.instances[0]!.memories.map((m) => m.pages)).toEqual([3]);
    const restored = instantiateWithSnapshot(await prepareSnapshotModule(counterBytes.slice()), {}, { snapshot });
    const c = api(restored);
    expect(c.pages()).toBe(3);
    expect(c.memCount()).toBe(5);
    expect(c.lastWord()).toBe(5);
    expect(c.inc()).toBe(6); // the global counter continues
    expect(c.memCount()).toBe(6); // and the memory counter
    expect(c.lastWord()).toBe(6); // in the grown page
    expect(c.sum()).toBe(60_000_000_000n);
    expect(c.half()).toBe(3);
    expect(c.scale()).toBe((-1.5) ** 6);
    expect(c.seed()).toBe(7);
    // the original goes on independently and agrees
    expect(api(running).inc()).toBe(6);
    expect(api(running).scale()).toBe(c.scale());

    // Without the snapshot a new instance starts from zero: the restore is what carried the state.
    const fresh = api(instantiateWithSnapshot(await prepareSnapshotModule(counterBytes)));
    expect(fresh.inc()).toBe(1);
    expect(fresh.pages()).toBe(1);
  });

  it('the memory is restored byte for byte, data segment included', async () => {
    const { path, running, prepared } = await snapshotAfter(4, 'bytes.fgsnap');
    const restored = instantiateWithSnapshot(prepared, {}, { snapshot: await readSnapshotFile(path, trusted) });
    const name = `${STATE_MEMORY_EXPORT_PREFIX}0`;
    const a = new Uint8Array((running.instance.exports[name] as WebAssembly.Memory).buffer);
    const b = new Uint8Array((restored.instance.exports[name] as WebAssembly.Memory).buffer);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(new TextDecoder().decode(b.subarray(0, 4))).toBe('CNTR');
  });

  it('a snapshot offered to another module is refused, before and after instantiation', async () => {
    const { path } = await snapshotAfter(2, 'mismatch.fgsnap');
    const snapshot = await readSnapshotFile(path, trusted);
    const other = await prepareSnapshotModule(otherBytes);
    expect(codeOf(() => instantiateWithSnapshot(other, {}, { snapshot }))).toBe('SNAPSHOT_MODULE_MISMATCH');
    const instance = instantiateWithSnapshot(other);
    expect(codeOf(() => createSnapshotter().restore(instance, snapshot))).toBe('SNAPSHOT_MODULE_MISMATCH');
    expect(api(instance).inc()).toBe(1); // untouched
    // A state claiming the other module's hash still has to fit its layout.
    const forged: SnapshotState = { ...snapshot, moduleHash: other.moduleHash, instances: [{ ...snapshot.instances[0]!, moduleHash: other.moduleHash, globals: snapshot.instances[0]!.globals.slice(1) }] };
    expect(codeOf(() => createSnapshotter().restore(instance, forged))).toBe('SNAPSHOT_MODULE_MISMATCH');
    // An immutable global that differs means another build: refused.
    const seed = snapshot.instances[0]!.globals.find((g) => !g.mutable)!;
    const changed: SnapshotState = {
      ...forged,
      instances: [{ ...forged.instances[0]!, globals: snapshot.instances[0]!.globals.map((g) => (g === seed ? { ...g, value: '8' } : g)) }],
    };
    const counter = instantiateWithSnapshot(await prepareSnapshotModule(counterBytes));
    expect(codeOf(() => planRestore(counter.instances[0]!, { ...changed.instances[0]!, moduleHash: counter.moduleHash }))).toBe('SNAPSHOT_MODULE_MISMATCH');
  });

  it('a tampered or foreign-signed file is refused with SNAPSHOT_INVALID', async () => {
    const { path } = await snapshotAfter(3, 'tamper.fgsnap');
    const bytes = readFileSync(path);
    const memoryByte = bytes.slice();
    memoryByte[bytes.length - 64 - 70_000]! ^= 1; // inside the memory bytes
    writeFileSync(join(tmp.dir, 't1.fgsnap'), memoryByte);
    await expect(readSnapshotFile(join(tmp.dir, 't1.fgsnap'), trusted)).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID', details: { reason: 'memory-digest' } });
    writeFileSync(join(tmp.dir, 't2.fgsnap'), bytes.subarray(0, bytes.length - 1));
    await expect(readSnapshotFile(join(tmp.dir, 't2.fgsnap'), trusted)).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID', details: { reason: 'truncated' } });
    await expect(readSnapshotFile(path, { trustedKeys: [otherKey.publicKey], crypto })).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID', details: { reason: 'untrusted-key' } });
  });

  it('a memory limit below the snapshot size refuses the restore and leaves the instance untouched', async () => {
    const { path } = await snapshotAfter(3, 'limit.fgsnap');
    const snapshot = await readSnapshotFile(path, trusted);
    const limited = await prepareSnapshotModule(counterBytes, { maxPages: 2 });
    const instance = instantiateWithSnapshot(limited);
    expect(codeOf(() => createSnapshotter().restore(instance, snapshot))).toBe('SANDBOX_MEMORY_EXCEEDED');
    expect(api(instance).pages()).toBe(1);
    expect(api(instance).inc()).toBe(1);
    // Enough room: restored.
    const roomy = instantiateWithSnapshot(await prepareSnapshotModule(counterBytes, { maxPages: 3 }), {}, { snapshot });
    expect(api(roomy).inc()).toBe(4);
  });

  it('restores only into a fresh instance: a memory already larger than the snapshot is refused', async () => {
    const { path } = await snapshotAfter(1, 'small.fgsnap');
    const snapshot = await readSnapshotFile(path, trusted);
    const grown = instantiateWithSnapshot(await prepareSnapshotModule(counterBytes));
    for (let i = 0; i < 3; i++) api(grown).inc();
    expect(codeOf(() => createSnapshotter().restore(grown, snapshot))).toBe('SNAPSHOT_UNSUPPORTED');
    expect(api(grown).inc()).toBe(4); // untouched
  });

  it('imported globals and memories are left to their owner; the defined ones are captured', async () => {
    const bytes = await wat(`(module
      (import "env" "memory" (memory 1))
      (import "env" "base" (global $base (mut i32)))
      (global $own (mut i32) (i32.const 0))
      (func (export "bump") (result i32)
        (global.set $own (i32.add (global.get $own) (global.get $base)))
        (i32.store (i32.const 0) (global.get $own))
        (global.get $own)))`);
    const prepared = await prepareSnapshotModule(bytes);
    const env = () => ({ env: { memory: new WebAssembly.Memory({ initial: 1 }), base: new WebAssembly.Global({ value: 'i32', mutable: true }, 10) } });
    const first = instantiateWithSnapshot(prepared, env());
    (first.instance.exports['bump'] as () => number)();
    const state = createSnapshotter().capture(first, { containerId: 'ctr-imports' });
    expect(state.instances[0]!.memories).toEqual([]);
    expect(state.instances[0]!.globals.map((g) => [g.index, g.value])).toEqual([[1, '10']]);
    const second = instantiateWithSnapshot(prepared, env(), { snapshot: state });
    expect((second.instance.exports['bump'] as () => number)()).toBe(20);
  });

  it('a mutable v128 global cannot be captured', async () => {
    const prepared = await prepareSnapshotModule(await wat('(module (global (mut v128) (v128.const i64x2 1 2)) (global v128 (v128.const i64x2 3 4)))'));
    const instance = instantiateWithSnapshot(prepared);
    expect(codeOf(() => createSnapshotter().capture(instance, { containerId: 'ctr-simd' }))).toBe('SNAPSHOT_UNSUPPORTED');
    // an immutable one alone is recomputed by any fresh instance, so it is skipped
    const immutable = instantiateWithSnapshot(await prepareSnapshotModule(await wat('(module (global v128 (v128.const i64x2 3 4)))')));
    expect(createSnapshotter().capture(immutable, { containerId: 'ctr-simd' }).instances[0]!.globals).toEqual([]);
  });
});

/**
 * A WASI preview1 reactor in the style of wasi-libc: a stack pointer and a heap pointer as mutable globals,
 * `_initialize` sets up the heap, `inc` bumps a counter in memory, allocates 32 KiB per call (growing
 * memory like `sbrk`), formats `count=N\n` on the stack and writes it to stdout with `fd_write`.
 */
const REACTOR = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $sp (mut i32) (i32.const 4096))
  (global $heap (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $heap (i32.const 8192)))
  (func $sbrk (param $n i32) (result i32) (local $old i32)
    (local.set $old (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 1)))))
    (local.get $old))
  (func (export "inc") (result i32) (local $n i32) (local $p i32) (local $end i32) (local $cell i32)
    (i32.store (i32.const 1024) (i32.add (i32.load (i32.const 1024)) (i32.const 1)))
    (local.set $n (i32.load (i32.const 1024)))
    (local.set $cell (call $sbrk (i32.const 32768)))
    (i32.store (local.get $cell) (local.get $n))
    ;; format on the "stack": digits backwards from sp
    (global.set $sp (i32.sub (global.get $sp) (i32.const 64)))
    (local.set $end (i32.add (global.get $sp) (i32.const 40)))
    (i32.store8 (local.get $end) (i32.const 10))
    (local.set $p (local.get $end))
    (loop $digits
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digits (local.get $n)))
    (local.set $p (i32.sub (local.get $p) (i32.const 6)))
    (i32.store (local.get $p) (i32.const 0x6e756f63)) ;; "coun"
    (i32.store16 (i32.add (local.get $p) (i32.const 4)) (i32.const 0x3d74)) ;; "t="
    (i32.store (global.get $sp) (local.get $p))
    (i32.store (i32.add (global.get $sp) (i32.const 4)) (i32.sub (i32.add (local.get $end) (i32.const 1)) (local.get $p)))
    (drop (call $fd_write (i32.const 1) (global.get $sp) (i32.const 1) (i32.add (global.get $sp) (i32.const 8))))
    (global.set $sp (i32.add (global.get $sp) (i32.const 64)))
    (i32.load (i32.const 1024)))
  (func (export "heap") (result i32) (global.get $heap)))`;

describe('snapshots of a WASI preview1 module', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir('forgeone-snapshot-p1-');
  });
  afterAll(() => tmp.cleanup());

  it('after _initialize and between exported calls: the restored guest goes on where it was, on a new host', async () => {
    const bytes = await wat(REACTOR);
    const dec = new TextDecoder();

    // First life: initialise, three calls through the gate.
    const first = allowAllGate();
    let out1 = '';
    const host1 = createPreview1Host({ gate: first.gate, stdout: (b) => (out1 += dec.decode(b)) });
    const prepared = await prepareSnapshotModule(bytes);
    const running = instantiateWithSnapshot(prepared, host1.imports as unknown as WebAssembly.Imports);
    host1.bind(running.instance);
    (running.instance.exports['_initialize'] as () => void)();
    const inc1 = running.instance.exports['inc'] as () => number;
    for (let i = 0; i < 3; i++) inc1();
    expect(out1).toBe('count=1\ncount=2\ncount=3\n');
    expect(first.records.map((r) => r.syscall)).toEqual(['wasi:cli/stdout', 'wasi:cli/stdout', 'wasi:cli/stdout']);
    const position = { traceId: 'tr-reactor', seq: first.gate.sequence };
    expect(position.seq).toBe(3);
    const path = join(tmp.dir, 'reactor.fgsnap');
    await writeSnapshotFile(path, createSnapshotter().capture(running, { containerId: 'ctr-reactor', trace: position }), { signingKey: kernelKey, crypto });
    host1.dispose();

    // Second life: a new gate, host and instance; restored, not re-initialised.
    const snapshot = await readSnapshotFile(path, trusted);
    expect(snapshot.trace?.seq).toBe(3);
    const second = allowAllGate();
    let out2 = '';
    const host2 = createPreview1Host({ gate: second.gate, stdout: (b) => (out2 += dec.decode(b)) });
    const restored = instantiateWithSnapshot(await prepareSnapshotModule(bytes), host2.imports as unknown as WebAssembly.Imports, { snapshot });
    host2.bind(restored.instance);
    const inc2 = restored.instance.exports['inc'] as () => number;
    expect((restored.instance.exports['heap'] as () => number)()).toBe(8192 + 3 * 32768);
    expect((restored.instance.exports['memory'] as WebAssembly.Memory).buffer.byteLength).toBe(2 * 65536);
    expect(inc2()).toBe(4);
    expect(inc2()).toBe(5);
    expect(out2).toBe('count=4\ncount=5\n');
    expect(second.records).toHaveLength(2); // the new gate records the calls after the snapshot
    host2.dispose();
  });
});
