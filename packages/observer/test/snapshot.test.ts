import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isForgeError, utf8 } from '@forgeone/common';
import { createMemoryStore } from '@forgeone/store';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SNAPSHOT_MAGIC,
  SNAPSHOT_PAGE_SIZE,
  createTraceWriter,
  decodeGlobalValue,
  encodeGlobalValue,
  readSnapshot,
  readSnapshotFile,
  tracePositionOf,
  writeSnapshot,
  writeSnapshotFile,
  type SnapshotState,
} from '../src/index.js';
import { T0, crypto, header as traceHeader, kernelKey, otherKey } from './helpers.js';

const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);
const BLOCK = 'c'.repeat(64);

function pageOf(seed: number, pages = 1): Uint8Array {
  const bytes = new Uint8Array(pages * SNAPSHOT_PAGE_SIZE);
  for (let i = 0; i < bytes.length; i += 97) bytes[i] = (i + seed) & 0xff;
  return bytes;
}

/** A module state: one page of memory 0, an empty memory 1, one global of each type. */
function moduleState(): SnapshotState {
  return {
    kind: 'module',
    moduleHash: HASH_A,
    container: { id: 'ctr-01' },
    trace: { traceId: 'tr-1', seq: 42, blockHash: BLOCK },
    instances: [
      {
        moduleHash: HASH_A,
        memories: [
          { index: 0, pages: 1, bytes: pageOf(1) },
          { index: 1, pages: 0, bytes: new Uint8Array(0) },
        ],
        globals: [
          { index: 0, type: 'i32', mutable: true, value: encodeGlobalValue('i32', -7) },
          { index: 1, type: 'i64', mutable: true, value: encodeGlobalValue('i64', -(2n ** 63n)) },
          { index: 2, type: 'f32', mutable: false, value: encodeGlobalValue('f32', -0) },
          { index: 3, type: 'f64', mutable: true, value: encodeGlobalValue('f64', Number.NaN) },
        ],
      },
    ],
  };
}

const write = (state: SnapshotState = moduleState(), key = kernelKey): Uint8Array => writeSnapshot(state, { signingKey: key, crypto, createdAt: T0 });
const read = (bytes: Uint8Array, limits = {}) => readSnapshot(bytes, { trustedKeys: [kernelKey.publicKey], crypto, limits });

/** The SNAPSHOT_INVALID reason `fn` threw, or a description of what else happened. */
function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!isForgeError(e)) throw e;
    return e.code === 'SNAPSHOT_INVALID' ? String(e.details?.reason) : e.code;
  }
  return 'accepted';
}

function headerLength(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(8);
}

/** Replace the header (same or different length) and return a new file; the signature is left as it was. */
function withHeader(bytes: Uint8Array, edit: (text: string) => string): Uint8Array {
  const n = headerLength(bytes);
  const text = new TextDecoder().decode(bytes.subarray(12, 12 + n));
  const next = utf8(edit(text));
  const out = new Uint8Array(bytes.length - n + next.length);
  out.set(bytes.subarray(0, 12));
  new DataView(out.buffer).setUint32(8, next.length);
  out.set(next, 12);
  out.set(bytes.subarray(12 + n), 12 + next.length);
  return out;
}

describe('snapshot file: round trip', () => {
  it('reads back exactly what was written, with the trace position, signer and creation time', () => {
    const state = moduleState();
    const bytes = write(state);
    expect([...bytes.subarray(0, 8)]).toEqual([...SNAPSHOT_MAGIC]);
    const snap = read(bytes);
    expect(snap.kind).toBe('module');
    expect(snap.moduleHash).toBe(HASH_A);
    expect(snap.container).toEqual({ id: 'ctr-01' });
    expect(snap.trace).toEqual({ traceId: 'tr-1', seq: 42, blockHash: BLOCK });
    expect(snap.createdAt).toBe(T0);
    expect(snap.keyId).toBe(kernelKey.keyId);
    expect(snap.instances).toHaveLength(1);
    const [inst] = snap.instances;
    expect(inst!.memories.map((m) => [m.index, m.pages, m.bytes.length])).toEqual([
      [0, 1, SNAPSHOT_PAGE_SIZE],
      [1, 0, 0],
    ]);
    expect(Buffer.from(inst!.memories[0]!.bytes).equals(Buffer.from(state.instances[0]!.memories[0]!.bytes))).toBe(true);
    expect(inst!.globals).toEqual(state.instances[0]!.globals);
    expect(decodeGlobalValue('i64', inst!.globals[1]!.value)).toBe(-(2n ** 63n));
    expect(Object.is(decodeGlobalValue('f32', inst!.globals[2]!.value), -0)).toBe(true);
    expect(decodeGlobalValue('f64', inst!.globals[3]!.value)).toBeNaN();
    expect(snap.header.instances[0]!.memories[0]!.sha3).toBe(Buffer.from(crypto.sha3_256(state.instances[0]!.memories[0]!.bytes)).toString('hex'));
  });

  it('holds a component: several instances in creation order, each with its own module hash', () => {
    const state: SnapshotState = {
      kind: 'component',
      moduleHash: HASH_A,
      container: { id: 'ctr-02' },
      instances: [
        { moduleHash: HASH_B, memories: [{ index: 0, pages: 1, bytes: pageOf(2) }], globals: [] },
        { moduleHash: HASH_A, memories: [], globals: [{ index: 1, type: 'i32', mutable: true, value: '5' }] },
        { moduleHash: HASH_B, memories: [{ index: 0, pages: 2, bytes: pageOf(3, 2) }], globals: [] },
      ],
    };
    const snap = read(write(state));
    expect(snap.kind).toBe('component');
    expect(snap.trace).toBeUndefined();
    expect(snap.instances.map((i) => i.moduleHash)).toEqual([HASH_B, HASH_A, HASH_B]);
    expect(Buffer.from(snap.instances[2]!.memories[0]!.bytes).equals(Buffer.from(pageOf(3, 2)))).toBe(true);
  });

  it('is deterministic: the same state, key and time give the same bytes', () => {
    expect(Buffer.from(write()).equals(Buffer.from(write()))).toBe(true);
  });

  it('ties the snapshot to the execution DNA through a checkpoint', async () => {
    const store = createMemoryStore();
    const writer = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: traceHeader('tr-snap'), blockSize: 4 });
    await writer.append([0, 1, 2, 3, 4].map((seq) => ({ seq, syscall: 'wasi:random/get', args: {}, verdict: 'allow' as const, rule: null, allowed: true, result: 0, start: T0, duration: 0.01, resultBytes: null })));
    const cp = await writer.checkpoint('snapshot');
    const position = tracePositionOf(cp);
    expect(position).toEqual({ traceId: 'tr-snap', seq: 5, blockHash: cp.hash });
    const snap = read(write({ ...moduleState(), trace: position }));
    expect(snap.trace).toEqual(position);
  });
});

describe('snapshot file: tampering is detected', () => {
  const good = write();
  const hlen = headerLength(good);
  const memStart = 12 + hlen;

  it('a changed header field (still canonical) breaks the signature', () => {
    expect(reasonOf(() => read(withHeader(good, (t) => t.replace('"ctr-01"', '"ctr-02"'))))).toBe('signature');
    expect(reasonOf(() => read(withHeader(good, (t) => t.replace('"seq":42', '"seq":41'))))).toBe('signature');
    expect(reasonOf(() => read(withHeader(good, (t) => t.replace('"value":"-7"', '"value":"-8"'))))).toBe('signature');
  });

  it('a header that is not canonical, not JSON or not a snapshot header is refused, naming the field', () => {
    expect(reasonOf(() => read(withHeader(good, (t) => t.replace('{"container"', '{ "container"'))))).toBe('header');
    expect(reasonOf(() => read(withHeader(good, (t) => t.slice(1))))).toBe('header');
    try {
      read(withHeader(good, (t) => t.replace('"pages":1', '"pages":-1')));
      expect.unreachable();
    } catch (e) {
      expect(isForgeError(e) && e.code).toBe('SNAPSHOT_INVALID');
      expect((e as { details: { path: string } }).details.path).toBe('instances[0].memories[0].pages');
    }
    // pages and byteLength disagree
    expect(reasonOf(() => read(withHeader(good, (t) => t.replace('"pages":1', '"pages":2'))))).toBe('header');
    // an i32 value out of range
    expect(reasonOf(() => read(withHeader(good, (t) => t.replace('"value":"-7"', '"value":"4294967295"'))))).toBe('header');
  });

  it('a changed memory byte fails its digest', () => {
    const bad = good.slice();
    bad[memStart + 1234]! ^= 0x01;
    expect(reasonOf(() => read(bad))).toBe('memory-digest');
  });

  it('a changed signature byte fails the signature', () => {
    const bad = good.slice();
    bad[bad.length - 3]! ^= 0x80;
    expect(reasonOf(() => read(bad))).toBe('signature');
  });

  it('truncation anywhere and trailing bytes are refused', () => {
    for (const n of [0, 4, 8, 11, 12, memStart - 1, memStart, memStart + 100, good.length - 64, good.length - 1]) {
      const r = reasonOf(() => read(good.subarray(0, n)));
      expect(r, `truncated to ${n}`).toBe('truncated');
    }
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    expect(reasonOf(() => read(longer))).toBe('trailing-bytes');
  });

  it('wrong magic is refused', () => {
    const bad = good.slice();
    bad[0] = 0x47;
    expect(reasonOf(() => read(bad))).toBe('magic');
    expect(reasonOf(() => read(utf8('FORGEPKG........')))).toBe('magic');
  });

  it('every single-byte change anywhere in the file is detected', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = good.slice();
        bad[at]! ^= xor;
        expect(reasonOf(() => read(bad))).not.toBe('accepted');
      }),
      { numRuns: 300 },
    );
  });
});

describe('snapshot file: keys', () => {
  it('a snapshot signed by a key that is not trusted is refused', () => {
    expect(reasonOf(() => read(write(moduleState(), otherKey)))).toBe('untrusted-key');
    // trusted keys may be given as a map or as key infos too
    expect(readSnapshot(write(moduleState(), otherKey), { trustedKeys: [otherKey.toPublic()], crypto }).keyId).toBe(otherKey.keyId);
    expect(readSnapshot(write(), { trustedKeys: new Map([[kernelKey.keyId, kernelKey.publicKey]]), crypto }).keyId).toBe(kernelKey.keyId);
  });

  it('a signature by another key under the kernel key id is refused', () => {
    const forged = withHeader(write(moduleState(), otherKey), (t) => t.replace(otherKey.keyId, kernelKey.keyId));
    expect(reasonOf(() => read(forged))).toBe('signature');
  });

  it('nothing is trusted when no keys are given', () => {
    expect(reasonOf(() => readSnapshot(write(), { trustedKeys: [], crypto }))).toBe('untrusted-key');
  });
});

describe('snapshot file: bounds', () => {
  it('a header length beyond the limit is refused before the header is read', () => {
    const bad = write().slice();
    new DataView(bad.buffer).setUint32(8, 0xffff_fff0);
    expect(reasonOf(() => read(bad))).toBe('limit');
    expect(reasonOf(() => read(write(), { maxHeaderBytes: 64 }))).toBe('limit');
  });

  it('counts and total memory size are bounded', () => {
    expect(reasonOf(() => read(write(), { maxMemories: 1 }))).toBe('limit');
    expect(reasonOf(() => read(write(), { maxGlobals: 3 }))).toBe('limit');
    expect(reasonOf(() => read(write(), { maxMemoryBytes: SNAPSHOT_PAGE_SIZE - 1 }))).toBe('limit');
    const three: SnapshotState = { ...moduleState(), kind: 'component', instances: [0, 1, 2].map(() => ({ moduleHash: HASH_B, memories: [], globals: [] })) };
    expect(reasonOf(() => read(write(three), { maxInstances: 2 }))).toBe('limit');
    expect(read(write(three)).instances).toHaveLength(3);
  });

  it('a header declaring huge memories in a small file is refused as truncated, without allocating them', () => {
    // 65536 pages declared (4 GiB), but the file holds a few bytes: refused from the lengths alone.
    const state: SnapshotState = { ...moduleState(), instances: [{ moduleHash: HASH_A, memories: [{ index: 0, pages: 1, bytes: pageOf(9) }], globals: [] }] };
    const bytes = write(state);
    const huge = withHeader(bytes, (t) => t.replace('"byteLength":65536', '"byteLength":4294967296').replace('"pages":1', '"pages":65536'));
    expect(reasonOf(() => read(huge))).toBe('truncated');
  });

  it('the writer refuses what the reader would refuse', () => {
    expect(reasonOf(() => writeSnapshot(moduleState(), { signingKey: kernelKey, crypto, limits: { maxMemories: 1 } }))).toBe('LIMIT_EXCEEDED');
  });
});

describe('snapshot file: malformed states are refused by the writer, naming the field', () => {
  const attempt = (edit: (s: SnapshotState) => unknown): { code: string; path: unknown } => {
    try {
      writeSnapshot(edit(moduleState()) as SnapshotState, { signingKey: kernelKey, crypto });
    } catch (e) {
      if (!isForgeError(e)) throw e;
      return { code: e.code, path: e.details?.path };
    }
    return { code: 'accepted', path: undefined };
  };

  it('memory bytes that are not pages × 64 KiB', () => {
    const r = attempt((s) => ({ ...s, instances: [{ ...s.instances[0]!, memories: [{ index: 0, pages: 2, bytes: pageOf(1) }] }] }));
    expect(r).toEqual({ code: 'INVALID_ARGUMENT', path: 'instances[0].memories[0].byteLength' });
  });

  it('a value that is not the exact form of its type', () => {
    const r = attempt((s) => ({ ...s, instances: [{ ...s.instances[0]!, globals: [{ index: 0, type: 'f64', mutable: true, value: '1.5' }] }] }));
    expect(r).toEqual({ code: 'INVALID_ARGUMENT', path: 'instances[0].globals[0].value' });
  });

  it('a v128 global, a bad hash, a module with two instances', () => {
    expect(attempt((s) => ({ ...s, instances: [{ ...s.instances[0]!, globals: [{ index: 0, type: 'v128', mutable: true, value: '0' }] }] })).path).toBe('instances[0].globals[0].type');
    expect(attempt((s) => ({ ...s, moduleHash: 'xyz' })).path).toBe('moduleHash');
    expect(attempt((s) => ({ ...s, instances: [s.instances[0]!, s.instances[0]!] })).path).toBe('instances');
    expect(attempt((s) => ({ ...s, container: { id: '' } })).path).toBe('container.id');
    expect(attempt((s) => ({ ...s, trace: { traceId: '../x', seq: 0 } })).path).toBe('trace.traceId');
  });
});

describe('global values', () => {
  it('every value of every type survives its text form exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => decodeGlobalValue('i32', encodeGlobalValue('i32', v)) === v),
    );
    fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => decodeGlobalValue('i64', encodeGlobalValue('i64', v)) === v));
    fc.assert(fc.property(fc.double(), (v) => Object.is(decodeGlobalValue('f64', encodeGlobalValue('f64', v)), v)));
    fc.assert(fc.property(fc.float(), (v) => Object.is(decodeGlobalValue('f32', encodeGlobalValue('f32', v)), v)));
  });

  it('unsigned i32 and i64 inputs are stored in their signed form', () => {
    expect(encodeGlobalValue('i32', 0xffff_ffff)).toBe('-1');
    expect(encodeGlobalValue('i64', 2n ** 64n - 1n)).toBe('-1');
    expect(encodeGlobalValue('f64', 1.5)).toBe('3ff8000000000000');
  });

  it('values that do not fit are refused', () => {
    expect(reasonOf(() => encodeGlobalValue('i32', 1.5))).toBe('INVALID_ARGUMENT');
    expect(reasonOf(() => encodeGlobalValue('i32', 2 ** 32))).toBe('INVALID_ARGUMENT');
    expect(reasonOf(() => encodeGlobalValue('i64', 5))).toBe('INVALID_ARGUMENT');
    expect(reasonOf(() => encodeGlobalValue('f64', 5n))).toBe('INVALID_ARGUMENT');
    expect(reasonOf(() => decodeGlobalValue('i32', '01'))).toBe('INVALID_ARGUMENT');
    expect(reasonOf(() => decodeGlobalValue('i32', '-0'))).toBe('INVALID_ARGUMENT');
    expect(reasonOf(() => decodeGlobalValue('i64', '9223372036854775808'))).toBe('INVALID_ARGUMENT');
    expect(reasonOf(() => decodeGlobalValue('f32', '3ff8000000000000'))).toBe('INVALID_ARGUMENT');
  });
});

describe('snapshot files on disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'forgeone-snap-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes privately and atomically and reads back verified', async () => {
    const path = join(dir, 'a.fgsnap');
    const bytes = await writeSnapshotFile(path, moduleState(), { signingKey: kernelKey, crypto, createdAt: T0 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).size).toBe(bytes.length);
    const snap = await readSnapshotFile(path, { trustedKeys: [kernelKey.publicKey], crypto });
    expect(snap.trace?.seq).toBe(42);
  });

  it('a missing file is NOT_FOUND; a file larger than the limits allow is refused before it is read', async () => {
    await expect(readSnapshotFile(join(dir, 'none'), { trustedKeys: [kernelKey.publicKey], crypto })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const path = join(dir, 'big.fgsnap');
    writeFileSync(path, write());
    await expect(readSnapshotFile(path, { trustedKeys: [kernelKey.publicKey], crypto, limits: { maxMemoryBytes: 1000, maxHeaderBytes: 1000 } })).rejects.toMatchObject({
      code: 'SNAPSHOT_INVALID',
      details: { reason: 'limit' },
    });
  });
});
