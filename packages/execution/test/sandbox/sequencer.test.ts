// The kernel puts a worker's record blocks back in hand-over order (slots and posted copies can cross) and
// resolves rule names that arrive after the blocks using them.
import { describe, expect, it } from 'vitest';
import type { RawBlock } from '../../src/gate/index.js';
import { createRecordSequencer } from '../../src/sandbox/records.js';

const block = (handOver: number | undefined, ids: number[]): RawBlock => ({
  count: ids.length,
  fields: new Float64Array(ids.length * 10),
  rules: [],
  arena: new Uint8Array(0),
  ruleIds: Int32Array.from(ids),
  ...(handOver === undefined ? {} : { handOver }),
});

describe('record sequencer', () => {
  it('emits in hand-over order, holding a block until its predecessors came', () => {
    const out: RawBlock[] = [];
    const seq = createRecordSequencer((b) => out.push(b));
    seq.addRuleNames(['a/x']);
    seq.push(block(0, [0]));
    seq.push(block(2, [0]));
    seq.push(block(3, [-1]));
    expect(out).toHaveLength(1);
    expect(seq.waiting).toBe(2);
    seq.push(block(1, [0, 0]));
    expect(out.map((b) => b.count)).toEqual([1, 2, 1, 1]);
    expect(out.map((b) => b.rules)).toEqual([['a/x'], ['a/x', 'a/x'], ['a/x'], [null]]);
  });

  it('holds a block until the names of its rules arrive', () => {
    const out: RawBlock[] = [];
    const seq = createRecordSequencer((b) => out.push(b));
    seq.push(block(0, [0, 1]));
    expect(out).toHaveLength(0);
    seq.addRuleNames(['a/x']);
    expect(out).toHaveLength(0);
    seq.addRuleNames(['a/y']);
    expect(out[0]!.rules).toEqual(['a/x', 'a/y']);
  });

  it('at the end sends what still waits, in order, unknown rules as null', () => {
    const out: RawBlock[] = [];
    const seq = createRecordSequencer((b) => out.push(b));
    seq.push(block(3, [0]));
    seq.push(block(1, [5]));
    seq.push(block(undefined, [0]));
    expect(out).toHaveLength(1);
    seq.flush();
    expect(out.map((b) => b.count)).toEqual([1, 1, 1]);
    expect(out[1]!.rules).toEqual([null]);
    expect(seq.waiting).toBe(0);
  });
});
