// The ring recorder's three ways of handing blocks over (copy, double-buffered ring, shared slots drained by
// another thread), and the gate's history (rate, anomaly) computed only when a rule reads it.
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, trustVector } from '@forgeone/common';
import { compilePolicy, parsePolicy, type Decision } from '@forgeone/trust';
import { describe, expect, it } from 'vitest';
import { Gate, RingRecorder, decodeBlock, drainSlots, requestDrain, salvageBlock, type CallArgsView, type RawBlock } from '../../src/index.js';

const syscalls = new SyscallTable(KNOWN_SYSCALLS);
const allow = (rule: string): Decision => ({ verdict: 'allow', rule, reason: '', rateLimited: false, code: null });
const noArgs = (): CallArgsView => ({ path: undefined, host: undefined, port: undefined, size: undefined, detail: undefined });

/** Record `n` calls numbered from `from`: a path and 4 result bytes holding the number, rule `r/<n % 3>`. */
function recordCalls(recorder: RingRecorder, from: number, n: number): void {
  for (let i = from; i < from + n; i++) {
    const args = { ...noArgs(), path: `/data/${i}` };
    const bytes = new Uint8Array(new Uint32Array([i]).buffer);
    recorder.record(i, 3, args, 0, allow(`r/${i % 3}`), true, 0, 1000 + i, 0.5, bytes);
  }
}

/** Every call decoded back: seq, path, result bytes and rule agree with what was recorded. */
function expectCalls(blocks: readonly RawBlock[], from: number, n: number): void {
  const records = blocks.flatMap((b) => decodeBlock(b, syscalls));
  expect(records.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => from + i));
  for (const r of records) {
    expect(r.args.path).toBe(`/data/${r.seq}`);
    expect(new Uint32Array(r.resultBytes!.slice().buffer)[0]).toBe(r.seq);
    expect(r.rule).toBe(`r/${r.seq % 3}`);
  }
}

describe('RingRecorder hand-over', () => {
  it('hands over copies the receiver keeps: later recording never touches them', () => {
    const kept: RawBlock[] = [];
    const recorder = new RingRecorder({ blockSize: 8, onBlock: (b) => kept.push(b) });
    recordCalls(recorder, 0, 40);
    expect(kept).toHaveLength(5);
    expect(new Set(kept.map((b) => b.fields.buffer)).size).toBe(5);
    expectCalls(kept, 0, 40);
  });

  it('double-buffers for a receiver that gives blocks back: the same two rings alternate, nothing is lost', () => {
    const buffers: ArrayBufferLike[] = [];
    const decoded: RawBlock[] = [];
    const recorder: RingRecorder = new RingRecorder({
      blockSize: 8,
      onBlock: (b) => {
        buffers.push(b.fields.buffer);
        // Decoded before it is given back: what a synchronous consumer does.
        decoded.push({ count: b.count, fields: b.fields.slice(), rules: [...b.rules], arena: b.arena.slice() });
        recorder.recycle(b);
      },
    });
    recordCalls(recorder, 0, 80);
    expectCalls(decoded, 0, 80);
    // The first block is a copy; from then on two rings take turns, handed over without copying.
    const rings = new Set(buffers.slice(1));
    expect(rings.size).toBe(2);
    expect(buffers[1]).toBe(buffers[3]);
    expect(buffers[2]).toBe(buffers[4]);
  });

  it('a lent ring that is not given back is not written again (the recorder copies meanwhile)', () => {
    const blocks: RawBlock[] = [];
    let give = true;
    const recorder: RingRecorder = new RingRecorder({
      blockSize: 4,
      onBlock: (b) => {
        blocks.push(b);
        if (give) recorder.recycle(b);
      },
    });
    recordCalls(recorder, 0, 8); // a copy, then the first lent ring (given back)
    give = false;
    recordCalls(recorder, 8, 4); // lent, and kept
    const kept = blocks.at(-1)!;
    const before = decodeBlock(kept, syscalls);
    recordCalls(recorder, 12, 40);
    expect(decodeBlock(kept, syscalls)).toEqual(before);
    expectCalls(blocks.slice(2), 8, 44);
  });
});

describe('RingRecorder shared slots', () => {
  it('hands blocks over as slots another thread drains in order; rule names resolve through the table', () => {
    const handed: RawBlock[] = [];
    const recorder = new RingRecorder({ blockSize: 4, shared: true, slots: 4, onBlock: (b) => handed.push(b) });
    const ring = recorder.shared!;
    recordCalls(recorder, 0, 12);
    expect(handed.map((b) => b.slot)).toEqual([0, 1, 2]);
    expect(handed.map((b) => b.handOver)).toEqual([0, 1, 2]);
    expect(recorder.slotsHandedOver).toBe(3);
    // Requests coalesce until the receiver drains.
    expect(requestDrain(ring)).toBe(true);
    expect(requestDrain(ring)).toBe(false);
    const drained = drainSlots(ring, recorder.ruleNames());
    expect(drained.map((b) => b.handOver)).toEqual([0, 1, 2]);
    expect(recorder.slotsHandedOver).toBe(0);
    expect(requestDrain(ring)).toBe(true);
    // Copies: the slots can be written again.
    recordCalls(recorder, 12, 12);
    const more = drainSlots(ring, recorder.ruleNames());
    expect(more.map((b) => b.handOver)).toEqual([3, 4, 5]);
    expectCalls([...drained, ...more], 0, 24);
    expect(drainSlots(ring)).toEqual([]);
  });

  it('when no slot comes back it waits, then hands over a copy, numbered in sequence', () => {
    const handed: RawBlock[] = [];
    const recorder = new RingRecorder({ blockSize: 2, shared: true, slots: 2, slotWaitMs: 1, onBlock: (b) => handed.push(b) });
    recordCalls(recorder, 0, 6);
    expect(handed.map((b) => b.slot)).toEqual([0, undefined, undefined]);
    expect(handed.map((b) => b.handOver)).toEqual([0, 1, 2]);
    expect(handed[1]!.fields.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expectCalls([drainSlots(recorder.shared!, recorder.ruleNames())[0]!, handed[1]!, handed[2]!], 0, 6);
  });

  it('salvages handed-over slots the receiver never took, then the pending calls, with their rules', () => {
    const recorder = new RingRecorder({ blockSize: 4, shared: true, slots: 4 });
    recordCalls(recorder, 0, 10); // two slots handed over, 2 calls pending
    const names = [...recorder.ruleNames()];
    const salvaged = salvageBlock(recorder.shared!, names)!;
    expect(salvaged.count).toBe(10);
    expectCalls([salvaged], 0, 10);
  });
});

const HISTORY_POLICY = `
apiVersion: forgeone.policy/v1
name: history
version: 1
defaultAction: allow
root: base
nodes:
  base:
    rules:
      - { id: burst, action: deny, syscalls: ["forgeone:kv/get"], history: { rateAbove: 4 } }
      - { id: hot, action: deny, syscalls: ["forgeone:kv/set"], history: { anomalyAbove: 0.5 } }
`;

describe('Gate history', () => {
  function setup() {
    const { policy } = parsePolicy(HISTORY_POLICY);
    const program = compilePolicy(policy, { identity: createIdentity({ subject: 'plugin:test', trust: trustVector('Verified') }), syscalls });
    let t = 1_700_000_000_000;
    let score = 0;
    let reads = 0;
    const gate = new Gate({
      syscalls,
      policy: { mode: 'enforce', decide: (id, ctx) => program.decide(id, ctx) },
      now: () => t,
      anomaly: () => {
        reads++;
        return score;
      },
    });
    const call = (name: string): boolean => {
      const ok = gate.enter(syscalls.id(name));
      gate.exit(ok ? 0 : -1);
      return ok;
    };
    return { gate, call, tick: (ms: number) => (t += ms), setScore: (s: number) => (score = s), reads: () => reads };
  }

  it('a rate rule sees the calls of the last second', () => {
    const { call, tick } = setup();
    const verdicts: boolean[] = [];
    for (let i = 0; i < 7; i++) {
      verdicts.push(call('forgeone:kv/get'));
      tick(10);
    }
    // Five calls before it: the sixth is above 4 calls in the last second.
    expect(verdicts).toEqual([true, true, true, true, true, false, false]);
    tick(2500);
    expect(call('forgeone:kv/get')).toBe(true);
  });

  it('reads the anomaly score only for calls whose rules look at it, once per call', () => {
    const { call, setScore, reads } = setup();
    expect(call('forgeone:time/now')).toBe(true);
    expect(call('forgeone:kv/get')).toBe(true);
    expect(reads()).toBe(0);
    expect(call('forgeone:kv/set')).toBe(true);
    expect(reads()).toBe(1);
    setScore(0.9);
    expect(call('forgeone:kv/set')).toBe(false);
    expect(reads()).toBe(2);
  });
});

describe('RingRecorder arguments and sequence', () => {
  it('keeps every kind of argument (strings with non-ASCII text, numbers, absent ones) through a block', () => {
    const blocks: RawBlock[] = [];
    const recorder = new RingRecorder({ blockSize: 4, onBlock: (b) => blocks.push(b) });
    const calls: CallArgsView[] = [
      { path: '/data/é/😀.txt', host: undefined, port: undefined, size: 0, detail: undefined },
      { path: undefined, host: 'xn--bcher-kva.example', port: 443, size: undefined, detail: 'GET https' },
      { path: undefined, host: undefined, port: undefined, size: undefined, detail: undefined },
      { path: undefined, host: undefined, port: 65535, size: 2 ** 40, detail: '' },
    ];
    calls.forEach((args, i) => recorder.record(i, 3, args, 0, allow('r/x'), true, 0, 1000 + i, 0, null));
    const records = blocks.flatMap((b) => decodeBlock(b, syscalls));
    expect(records.map((r) => r.args)).toEqual([
      { path: '/data/é/😀.txt', size: 0 },
      { host: 'xn--bcher-kva.example', port: 443, detail: 'GET https' },
      {},
      { port: 65535, size: 2 ** 40, detail: '' },
    ]);
  });

  it('the gate records common calls inline: repeated details point back within a block, every block stands alone', () => {
    const blocks: RawBlock[] = [];
    const recorder = new RingRecorder({ blockSize: 3, shared: true, slots: 8, onBlock: (b) => blocks.push(b) });
    let verdict: 'allow' | 'deny' = 'allow';
    const decisions = { allow: allow('r/log'), deny: { ...allow('r/no'), verdict: 'deny' as const } };
    const gate = new Gate({ syscalls, policy: { mode: 'enforce', decide: () => decisions[verdict] }, recorder });
    const LOG = syscalls.id('forgeone:log/write');
    const TIME = syscalls.id('forgeone:time/now');
    const time = new Uint8Array(8);
    const expected: unknown[] = [];
    for (let i = 0; i < 8; i++) {
      verdict = i === 5 ? 'deny' : 'allow';
      const level = i % 4 === 3 ? 'warn' : 'info';
      gate.args.detail = level;
      gate.args.size = i;
      const allowed = gate.enter(LOG);
      gate.exit(allowed ? 0 : -1);
      expected.push({ seq: 2 * i, syscall: 'forgeone:log/write', args: { detail: level, size: i }, verdict, allowed, rule: verdict === 'deny' ? 'r/no' : 'r/log', resultBytes: null });
      new DataView(time.buffer).setUint32(0, 1000 + i, true);
      gate.enter(TIME);
      gate.exit(0, time);
      expected.push({ seq: 2 * i + 1, syscall: 'forgeone:time/now', args: {}, verdict, allowed: verdict === 'allow', rule: verdict === 'deny' ? 'r/no' : 'r/log', resultBytes: time.slice() });
    }
    // Five blocks were handed over as slots; they and the pending call are salvaged as if the thread had been killed.
    const salvaged = salvageBlock(recorder.shared!, recorder.ruleNames());
    const records = salvaged === null ? [] : decodeBlock(salvaged, syscalls);
    expect(records.map((r) => ({ seq: r.seq, syscall: r.syscall, args: r.args, verdict: r.verdict, allowed: r.allowed, rule: r.rule, resultBytes: r.resultBytes }))).toEqual(expected);
    // Each block handed over decodes alone (a repeated detail never points into another block).
    for (const b of blocks) for (const r of decodeBlock(b, syscalls)) if (r.syscall === 'forgeone:log/write') expect(r.args.detail).toMatch(/^(info|warn)$/);
    expect(recorder.total).toBe(16);
  });

  it('a gate given startSeq numbers its first call with it (a container restored from a snapshot)', () => {
    const blocks: RawBlock[] = [];
    const recorder = new RingRecorder({ blockSize: 2, onBlock: (b) => blocks.push(b) });
    const gate = new Gate({ syscalls, policy: { mode: 'enforce', decide: () => allow('r/any') }, recorder, startSeq: 40 });
    for (let i = 0; i < 3; i++) if (gate.enter(syscalls.id('wasi:clocks/wall-clock'))) gate.exit(0);
    recorder.flush();
    expect(blocks.flatMap((b) => decodeBlock(b, syscalls)).map((r) => r.seq)).toEqual([40, 41, 42]);
    expect(gate.sequence).toBe(43);
    expect(() => new Gate({ syscalls, policy: { mode: 'enforce', decide: () => allow('r/any') }, startSeq: -1 })).toThrow(RangeError);
  });
});
