// Call records travel from the worker's ring recorder to the kernel, block by block, in order, before the
// container's result settles — also for containers killed for CPU (what was flushed before the kill).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBlock, type CallRecord, type RawBlock } from '../../src/gate/index.js';
import { createSandboxPool, type SandboxPool, type SandboxedContainer } from '../../src/sandbox/index.js';
import { buildWorker, rejection, testPolicy, wat } from './helpers.js';

let built: Awaited<ReturnType<typeof buildWorker>>;
let pool: SandboxPool;
let guest: Uint8Array;

const GUEST = `(module
  (import "env" "tick" (func $tick (result i32)))
  (import "env" "now" (func $now (result f64)))
  (import "env" "kv_get" (func $kv (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $ticks (export "ticks") (param $n i32) (result i32) (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (drop (call $tick))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $i))
  (func (export "ticks_then_spin") (param $n i32) (drop (call $ticks (local.get $n))) (loop $l (br $l)))
  (func (export "clock") (result f64) (call $now))
  (func (export "forever") (loop $l (drop (call $tick)) (br $l)))
  ;; 37 ticks, one kv get (the kernel quarantines the container while answering it), then ticks forever.
  (func (export "ticks_kv_forever")
    (drop (call $ticks (i32.const 37)))
    (drop (call $kv (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 8)))
    (loop $l (drop (call $tick)) (br $l))))`;

beforeAll(async () => {
  built = await buildWorker();
  pool = createSandboxPool({ size: 2, maxContainers: 4, workerUrl: built.url });
  guest = await wat(GUEST);
  await pool.ready();
});

afterAll(async () => {
  await pool?.close();
  built?.cleanup();
});

/** Start a container that collects decoded records; `events` logs block arrivals and the result. */
function collect(start: (onRecords: (b: RawBlock) => void) => SandboxedContainer): { c: SandboxedContainer; records: CallRecord[]; blocks: number[]; events: string[] } {
  const records: CallRecord[] = [];
  const blocks: number[] = [];
  const events: string[] = [];
  const c: SandboxedContainer = start((b) => {
    blocks.push(b.count);
    events.push('block');
    records.push(...decodeBlock(b, c.syscalls));
  });
  c.result.then(
    () => events.push('result'),
    () => events.push('failed'),
  );
  return { c, records, blocks, events };
}

describe('call records to the kernel', () => {
  it('delivers N gated calls complete and in order, full blocks then the partial one, before the result', async () => {
    const { c, records, blocks, events } = collect((onRecords) =>
      pool.start({ runner: 'builtin:core', data: { module: guest, entry: 'ticks', args: [1000] }, policy: testPolicy(), onRecords, recordBlockSize: 64 }),
    );
    const r = await c.result;
    expect(r.value).toBe(1000);
    expect(records.length).toBe(1000);
    expect(records.map((x) => x.seq)).toEqual([...Array(1000).keys()]);
    expect(blocks).toEqual([...Array<number>(15).fill(64), 40]);
    expect(events.at(-1)).toBe('result');
    expect(events.filter((e) => e === 'block').length).toBe(16);
    for (const rec of records) {
      expect(rec).toMatchObject({ syscall: 'forgeone:time/now', verdict: 'allow', rule: 'base/time', allowed: true, result: 0 });
    }
    // Starts are monotone.
    for (let i = 1; i < records.length; i++) expect(records[i]!.start).toBeGreaterThanOrEqual(records[i - 1]!.start);
  });

  it('records refused calls and result bytes (a denied clock under deny-by-default)', async () => {
    const allowed = collect((onRecords) => pool.start({ runner: 'builtin:core', data: { module: guest, entry: 'clock' }, policy: testPolicy(), onRecords }));
    const denied = collect((onRecords) => pool.start({ runner: 'builtin:core', data: { module: guest, entry: 'clock' }, onRecords }));
    const [a, d] = await Promise.all([allowed.c.result, denied.c.result]);
    expect(d.value).toBe(-1);
    expect(denied.records).toMatchObject([{ seq: 0, syscall: 'wasi:clocks/wall-clock', verdict: 'deny', allowed: false, result: -1, resultBytes: null }]);
    expect(allowed.records.length).toBe(1);
    const bytes = allowed.records[0]!.resultBytes!;
    expect(new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true)).toBe(a.value);
  });

  it('a container killed for CPU delivers every block flushed before the kill, then fails', async () => {
    // 100 calls = 10 full blocks of 10, posted as they fill; then the guest spins and is killed.
    const full = collect((onRecords) =>
      pool.start({ runner: 'builtin:core', data: { module: guest, entry: 'ticks_then_spin', args: [100] }, policy: testPolicy(), limits: { cpuPerCallMs: 150 }, onRecords, recordBlockSize: 10 }),
    );
    const e = await rejection(full.c.result);
    expect(e.code).toBe('SANDBOX_CPU_EXCEEDED');
    expect(full.records.map((x) => x.seq)).toEqual([...Array(100).keys()]);
    expect(full.events.at(-1)).toBe('failed');
    expect(full.events.indexOf('failed')).toBe(10);

    // 105 calls: the 5 calls of the unflushed partial block are salvaged from the worker's shared ring after
    // the kill, verdicts and deciding rules kept (rule indexes are in shared memory, their names already
    // reached the kernel with the earlier blocks).
    const partial = collect((onRecords) =>
      pool.start({ runner: 'builtin:core', data: { module: guest, entry: 'ticks_then_spin', args: [105] }, policy: testPolicy(), limits: { cpuPerCallMs: 150 }, onRecords, recordBlockSize: 10 }),
    );
    expect((await rejection(partial.c.result)).code).toBe('SANDBOX_CPU_EXCEEDED');
    expect(partial.records.map((x) => x.seq)).toEqual([...Array(105).keys()]);
    expect(partial.records[99]!.rule).not.toBeNull();
    expect(partial.records.slice(100).every((r) => r.syscall === partial.records[0]!.syscall && r.verdict === partial.records[0]!.verdict && r.rule === partial.records[99]!.rule)).toBe(true);
    expect(partial.c.stats().calls).toBe(105);
  });

  it('many blocks through the shared slots (each slot reused many times): every call, in order, with its rule', async () => {
    const { c, records, blocks, events } = collect((onRecords) =>
      pool.start({ runner: 'builtin:core', data: { module: guest, entry: 'ticks', args: [20_000] }, policy: testPolicy(), onRecords, recordBlockSize: 8 }),
    );
    const r = await c.result;
    expect(r.value).toBe(20_000);
    expect(blocks.length).toBe(2500);
    expect(events.at(-1)).toBe('result');
    expect(records.map((x) => x.seq)).toEqual([...Array(20_000).keys()]);
    expect(records.every((x) => x.rule === 'base/time' && x.verdict === 'allow' && x.syscall === 'forgeone:time/now')).toBe(true);
  });

  it('flushes the partial block when a call blocks on quarantine, and after a serving call returns', async () => {
    // The kernel quarantines the container while the guest is inside a host call (a bridge call), so the
    // guest's next call finds the flag set, posts what was recorded, and blocks.
    const q: ReturnType<typeof collect> = collect((onRecords) =>
      pool.start({
        runner: 'builtin:core',
        data: { module: guest, entry: 'ticks_kv_forever' },
        policy: testPolicy(),
        onRecords,
        recordBlockSize: 10_000,
        handlers: { 'kv.get': () => Promise.resolve(q.c.quarantine()).then(() => null) },
      }),
    );
    const until = async (cond: () => boolean, ms = 5_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out: ${q.records.length} records, ${JSON.stringify(q.c.stats())}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await until(() => q.records.length > 0);
    expect(q.c.stats().state).toBe('quarantined');
    expect(q.records.length).toBe(38);
    expect(q.records.at(-1)).toMatchObject({ seq: 37, syscall: 'forgeone:kv/get', result: -2 });
    await new Promise((r) => setTimeout(r, 50));
    expect(q.c.stats().calls).toBe(38);
    // Released, the guest goes on; terminated later, the blocks posted before the kill arrive first.
    q.c.release();
    await until(() => q.c.stats().calls > 1000);
    await q.c.terminate('test');
    expect((await rejection(q.c.result)).code).toBe('CONTAINER_TERMINATED');
    expect(q.records.map((x) => x.seq)).toEqual([...Array(q.records.length).keys()]);

    const s = collect((onRecords) => pool.start({ runner: 'builtin:core', data: { module: guest, serve: true }, policy: testPolicy(), onRecords }));
    await s.c.serving;
    expect(await s.c.call('ticks', 7)).toBe(7);
    expect(s.records.length).toBe(7);
    expect(await s.c.call('ticks', 3)).toBe(3);
    expect(s.records.map((x) => x.seq)).toEqual([...Array(10).keys()]);
    await s.c.close();
  });
});
