// The trace of a container restored from a snapshot: its header names the snapshot, its records start at
// the snapshot's sequence number, and it verifies like any other trace.
import { createMemoryStore } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import { createTraceWriter, exportTrace, parseTrace, tracePositionOf, verifyTrace } from '../src/index.js';
import { call, crypto, header, kernelKey } from './helpers.js';

const trusted = { trustedKeys: [kernelKey.toPublic()], crypto };
const restoredFrom = { snapshot: 'ab'.repeat(32), traceId: 'tr-before', containerId: 'ctr-00', seq: 7, blockHash: 'cd'.repeat(32) };

describe('a restored trace', () => {
  it('starts at restoredFrom.seq, verifies, and gives snapshot positions past it', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('tr-after', { restoredFrom }), blockSize: 2 });
    expect(w.records).toBe(7);
    await expect(w.append([call(0)])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await w.append([call(7), call(8), call(9)]);
    const cp = await w.checkpoint('snapshot');
    expect(tracePositionOf(cp, restoredFrom.seq)).toEqual({ traceId: 'tr-after', seq: 10, blockHash: cp.hash });
    await w.stop({ outcome: 'returned' });
    const text = await exportTrace(store, 'tr-after');
    const v = verifyTrace(text, trusted);
    expect(v.issue).toBeNull();
    expect(v.records).toBe(3);
    expect(v.header?.restoredFrom).toEqual(restoredFrom);
    expect(v.summary).toMatchObject({ records: 3 });
    expect(parseTrace(text, crypto).records.map((r) => r.seq)).toEqual([7, 8, 9]);
  });

  it('a record renumbered from 0, or a header edited to another snapshot position, does not verify', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('tr-after', { restoredFrom }) });
    await w.append([call(7), call(8)]);
    await w.stop();
    const text = await exportTrace(store, 'tr-after');
    const renumbered = text
      .split('\n')
      .map((l) => (l.includes('"t":"call"') ? l.replace('"seq":7', '"seq":0') : l))
      .join('\n');
    expect(renumbered).not.toBe(text);
    expect(verifyTrace(renumbered, trusted).issue?.code).toBe('RECORD_SEQUENCE');
    const moved = text.replace('"seq":7,"snapshot"', '"seq":6,"snapshot"');
    expect(moved).not.toBe(text);
    expect(verifyTrace(moved, trusted).issue?.code).toBe('HEADER_ALTERED');
  });
});
