import { createHash } from 'node:crypto';
import { createMemoryStore } from '@forgeone/store';
import type { AppendLog, Store } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import { createTraceWriter, exportTrace, parseTrace, verifyTrace } from '../src/index.js';
import type { TraceCallRecord } from '../src/index.js';
import { T0, call, crypto, header, kernelKey } from './helpers.js';

const trusted = { trustedKeys: [kernelKey.toPublic()], crypto };

/** A real memory store whose logs count the appendBatch calls they receive (and the records in each). */
function countingStore(): { store: Store; batches: number[] } {
  const inner = createMemoryStore();
  const batches: number[] = [];
  const store: Store = {
    limits: inner.limits,
    kv: (name) => inner.kv(name),
    close: () => inner.close(),
    async log(name): Promise<AppendLog> {
      const log = await inner.log(name);
      return {
        name: log.name,
        get length() {
          return log.length;
        },
        append: (r) => log.append(r),
        appendBatch: (rs) => {
          batches.push(rs.length);
          return log.appendBatch(rs);
        },
        read: (from, limit) => log.read(from, limit),
        tail: (n) => log.tail(n),
      };
    },
  };
  return { store, batches };
}

function records(from: number, n: number): TraceCallRecord[] {
  return Array.from({ length: n }, (_, i) =>
    call(from + i, i % 5 === 4 ? { verdict: 'deny', allowed: false, result: -1, rule: 'base/no-etc', args: { path: '/etc/passwd' } } : { resultBytes: new Uint8Array(16).fill(i & 255) }),
  );
}

describe('the writer hot path', () => {
  it('a whole block of 256 records, and a batch of 1000, are each one durable appendBatch', async () => {
    const { store, batches } = countingStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('big'), checkpointEvery: 2 });
    expect(batches).toEqual([2]); // header + start checkpoint
    await w.append(records(0, 256));
    expect(batches.at(-1)).toBe(256 + 1); // the records and the seal of the full block
    await w.append(records(256, 1000));
    // 1000 records, seals of blocks 1, 2, 3 (of 256 each), interval checkpoints after blocks 1 and 3.
    expect(batches.at(-1)).toBe(1000 + 3 + 2);
    expect(batches).toHaveLength(3);
    expect(w.records).toBe(1256);
    expect(w.blocks).toBe(4);
    await w.stop({ endTime: T0 + 10 });
    const v = verifyTrace(await exportTrace(store, 'big'), trusted);
    expect(v.issue).toBeNull();
    expect(v.records).toBe(1256);
    expect(v.summary?.denials).toBe(51 + 200);
  });

  it('a record hash is SHA3-256 over the domain and the line bytes; the block hash chains them (docs/dna.md)', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('h'), blockSize: 3 });
    await w.append(records(0, 3));
    await w.stop({ endTime: T0 + 1 });
    const lines = (await exportTrace(store, 'h')).trimEnd().split('\n');
    const headerHash = createHash('sha3-256').update('forgeone.dna/v2:header\0').update(lines[0]!).digest();
    const recordHashes = lines.slice(2, 5).map((l) => createHash('sha3-256').update('forgeone.dna/v2:record\0').update(l).digest());
    const block = createHash('sha3-256').update('forgeone.dna/v2:block\0').update(headerHash).update(Buffer.concat(recordHashes)).digest('hex');
    const seal = JSON.parse(lines[5]!) as { t: string; hash: string; prev: string; digests: string[] };
    expect(seal.t).toBe('seal');
    expect(seal.prev).toBe(headerHash.toString('hex'));
    expect(seal.hash).toBe(block);
    expect(seal.digests).toEqual(recordHashes.map((h) => h.subarray(0, 8).toString('hex')));
  });

  it('strings needing escapes go through the slow path and still verify, and an edit of one is located', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('esc'), blockSize: 4 });
    const odd = ['/data/"quoted"', '/data/back\\slash', '/data/tab\there', '/data/é😀', '/data/\u2028', 'lone \ud800 half'];
    await w.append(odd.map((path, i) => call(i, { args: { path } })));
    await w.stop({ endTime: T0 + 1 });
    const text = await exportTrace(store, 'esc');
    expect(verifyTrace(text, trusted).issue).toBeNull();
    expect(verifyTrace(new TextEncoder().encode(text), trusted).issue).toBeNull();
    const back = parseTrace(text, crypto).records.map((r) => r.args.path);
    expect(back).toEqual([...odd.slice(0, 5), 'lone \ufffd half']);
    const lines = text.split('\n');
    lines[3] = lines[3]!.replace('back\\\\slash', 'back\\\\slosh');
    const v = verifyTrace(lines.join('\n'), trusted);
    expect(v.issue).toMatchObject({ code: 'RECORD_ALTERED', line: 4, seq: 1, block: 0 });
  });

  it('a lone surrogate in text input, or bytes that are not UTF-8, are refused at their line', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('ls'), blockSize: 4 });
    await w.append([call(0, { args: { path: '/data/\ufffd' } }), call(1)]);
    await w.stop({ endTime: T0 + 1 });
    const text = await exportTrace(store, 'ls');
    expect(verifyTrace(text, trusted).ok).toBe(true);
    // U+FFFD and a lone surrogate encode alike in UTF-8: text input with one must still be refused.
    const lone = text.replace('/data/\ufffd', '/data/\udc00');
    expect(verifyTrace(lone, trusted).issue).toMatchObject({ code: 'MALFORMED_LINE', line: 3 });
    const bytes = new TextEncoder().encode(text);
    const at = bytes.indexOf(0xef); // the first byte of U+FFFD in line 3
    const broken = bytes.slice();
    broken[at] = 0xff;
    expect(verifyTrace(broken, trusted).issue).toMatchObject({ code: 'MALFORMED_LINE', line: 3 });
  });

  it('a non-canonical number or key order in a record line is NOT_CANONICAL at its line', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('nc'), blockSize: 4 });
    await w.append([call(0), call(1)]);
    await w.stop({ endTime: T0 + 1 });
    const lines = (await exportTrace(store, 'nc')).split('\n');
    const variants = [lines[3]!.replace('"seq":1', '"seq":1.0'), lines[3]!.replace(',"t":"call"', '').replace('{"allowed"', '{"t":"call","allowed"'), lines[3]!.replace('"seq":1', '"seq": 1')];
    for (const bad of variants) {
      const copy = [...lines];
      copy[3] = bad;
      expect(verifyTrace(copy.join('\n'), trusted).issue, bad).toMatchObject({ code: 'NOT_CANONICAL', line: 4 });
    }
  });
});
