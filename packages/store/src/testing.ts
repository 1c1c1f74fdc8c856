/**
 * `@forgeone/store/testing`: the contract suite every {@link Store} implementation must pass.
 *
 * It is a vitest suite (vitest and fast-check are optional peer dependencies of this package: install them
 * where you run it). Call {@link storeContractSuite} at the top level of a test file.
 *
 * @packageDocumentation
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppendLog, KvMap, Store } from './Store.js';

/** A store handed to the contract suite, with what the suite needs to test persistence. */
export interface StoreUnderTest {
  /** A new, empty store. */
  readonly store: Store;
  /**
   * Open the same storage again, as a restarted process would. The suite closes the previous store
   * before calling it. Leave it out for a store that keeps nothing (the in-memory one): the suite then
   * skips its persistence tests.
   */
  readonly reopen?: () => Promise<Store>;
  /** Remove what the store left behind (a temporary directory); called after the suite closed the store. */
  readonly dispose?: () => Promise<void>;
}

/** Makes a fresh {@link StoreUnderTest}; the suite calls it once per test and once per property run. */
export type MakeStoreUnderTest = () => Promise<StoreUnderTest> | StoreUnderTest;

/** Options of {@link storeContractSuite}. */
export interface StoreContractOptions {
  /** Runs of each fast-check property (default 40). */
  readonly numRuns?: number;
  /** Also check records and values of exactly the store's size limits (default true; up to 16 MiB each). */
  readonly checkLimitBoundaries?: boolean;
}

/** Holds the store of the running test; reopening replaces it. */
class Harness {
  store: Store;
  readonly #sut: StoreUnderTest;

  constructor(sut: StoreUnderTest) {
    this.#sut = sut;
    this.store = sut.store;
  }

  get persistent(): boolean {
    return this.#sut.reopen !== undefined;
  }

  async reopen(): Promise<Store> {
    await this.store.close();
    this.store = await this.#sut.reopen!();
    return this.store;
  }

  async dispose(): Promise<void> {
    await this.store.close();
    await this.#sut.dispose?.();
  }
}

const enc = new TextEncoder();
const bytes = (s: string): Uint8Array => enc.encode(s);
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

/** Assert that calling `fn` fails (throws or rejects) with a ForgeError of `code`. */
async function failsWith(fn: () => unknown, code: string): Promise<void> {
  await expect((async () => fn())()).rejects.toMatchObject({ name: 'ForgeError', code });
}

async function readAll(log: AppendLog): Promise<string[]> {
  return (await log.read()).map((e) => text(e.data)!);
}

async function snapshotKv(kv: KvMap): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const k of await kv.list()) out.set(k, Buffer.from((await kv.get(k))!).toString('hex'));
  return out;
}

type Op =
  | { readonly t: 'append'; readonly log: number; readonly data: Uint8Array }
  | { readonly t: 'batch'; readonly log: number; readonly data: Uint8Array[] }
  | { readonly t: 'read'; readonly log: number; readonly from: number; readonly limit: number }
  | { readonly t: 'tail'; readonly log: number; readonly n: number }
  | { readonly t: 'set'; readonly ns: number; readonly key: string; readonly value: Uint8Array }
  | { readonly t: 'delete'; readonly ns: number; readonly key: string }
  | { readonly t: 'get'; readonly ns: number; readonly key: string }
  | { readonly t: 'list'; readonly ns: number; readonly prefix: string }
  | { readonly t: 'reopen' };

const LOGS = ['audit', 'trace/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H'] as const;
const NAMESPACES = ['audit', 'data/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H'] as const;

function opArbitrary(withReopen: boolean): fc.Arbitrary<Op> {
  const log = fc.integer({ min: 0, max: LOGS.length - 1 });
  const ns = fc.integer({ min: 0, max: NAMESPACES.length - 1 });
  // Few distinct keys, so sets, overwrites and deletes collide; some share prefixes; one is not ASCII.
  const key = fc.constantFrom('a', 'ab', 'abc', 'b', 'b/1', 'b/2', 'é', 'z');
  const data = fc.uint8Array({ maxLength: 48 });
  const ops: fc.Arbitrary<Op>[] = [
    fc.record({ t: fc.constant('append' as const), log, data }),
    fc.record({ t: fc.constant('batch' as const), log, data: fc.array(data, { maxLength: 5 }) }),
    fc.record({ t: fc.constant('read' as const), log, from: fc.nat({ max: 12 }), limit: fc.nat({ max: 12 }) }),
    fc.record({ t: fc.constant('tail' as const), log, n: fc.nat({ max: 12 }) }),
    fc.record({ t: fc.constant('set' as const), ns, key, value: data }),
    fc.record({ t: fc.constant('set' as const), ns, key, value: data }),
    fc.record({ t: fc.constant('delete' as const), ns, key }),
    fc.record({ t: fc.constant('get' as const), ns, key }),
    fc.record({ t: fc.constant('list' as const), ns, prefix: fc.constantFrom('', 'a', 'ab', 'b/', 'x') }),
  ];
  if (withReopen) ops.push(fc.constant({ t: 'reopen' as const }));
  return fc.oneof(...ops);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * Register the contract suite of the {@link Store} interface for one implementation: ordering and sequence
 * numbers of appends (single, concurrent, batched), read ranges and tails, name validation, key-value
 * get/set/delete/list with prefixes, size limits, isolation of logs and namespaces, copying of data in and
 * out, behaviour after close, persistence across reopen (when the implementation offers `reopen`), and
 * fast-check properties comparing random operation sequences — sequential and concurrent — with a model
 * made of arrays and Maps.
 *
 * @param name - the implementation's name, shown in the test report
 * @param makeStore - makes a fresh, empty store for each test (and each property run)
 * @param options - property run count, limit boundary checks
 * @returns nothing; the tests are registered with vitest
 * @example
 * ```ts
 * import { createMemoryStore } from '@forgeone/store';
 * import { storeContractSuite } from '@forgeone/store/testing';
 *
 * storeContractSuite('memory', () => ({ store: createMemoryStore() }));
 * ```
 */
export function storeContractSuite(name: string, makeStore: MakeStoreUnderTest, options: StoreContractOptions = {}): void {
  const numRuns = options.numRuns ?? 40;
  const checkBoundaries = options.checkLimitBoundaries ?? true;

  describe(`Store contract: ${name}`, () => {
    let h: Harness;
    beforeEach(async () => {
      h = new Harness(await makeStore());
    });
    afterEach(async () => {
      await h.dispose();
    });

    describe('append-only logs', () => {
      it('numbers records from 0 in append order and reads them back', async () => {
        const log = await h.store.log('audit');
        expect(log.name).toBe('audit');
        expect(log.length).toBe(0);
        expect(await log.read()).toEqual([]);
        expect(await log.append('first')).toEqual({ seq: 0 });
        expect(await log.append(bytes('second'))).toEqual({ seq: 1 });
        expect(await log.append(new Uint8Array(0))).toEqual({ seq: 2 });
        expect(await log.append('ünïcödé ✓')).toEqual({ seq: 3 });
        expect(log.length).toBe(4);
        const all = await log.read();
        expect(all.map((e) => e.seq)).toEqual([0, 1, 2, 3]);
        expect(all.map((e) => text(e.data))).toEqual(['first', 'second', '', 'ünïcödé ✓']);
        expect(all.every((e) => e.data instanceof Uint8Array)).toBe(true);
      });

      it('gives concurrent appends distinct sequence numbers in call order', async () => {
        const log = await h.store.log('audit');
        const results = await Promise.all(Array.from({ length: 64 }, (_, i) => log.append(`r${i}`)));
        expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 64 }, (_, i) => i));
        expect(await readAll(log)).toEqual(Array.from({ length: 64 }, (_, i) => `r${i}`));
      });

      it('appends batches contiguously, mixed with single appends, and an empty batch appends nothing', async () => {
        const log = await h.store.log('audit');
        await log.append('a');
        expect(await log.appendBatch(['b', bytes('c'), 'd'])).toEqual({ firstSeq: 1, count: 3 });
        expect(await log.appendBatch([])).toEqual({ firstSeq: 4, count: 0 });
        const [x, y, z] = await Promise.all([log.append('e'), log.appendBatch(['f', 'g']), log.append('h')]);
        expect([x.seq, y, z.seq]).toEqual([4, { firstSeq: 5, count: 2 }, 7]);
        expect(await readAll(log)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
        expect(log.length).toBe(8);
      });

      it('reads ranges: fromSeq, limit, past the end, and limit 0', async () => {
        const log = await h.store.log('audit');
        await log.appendBatch(Array.from({ length: 10 }, (_, i) => `r${i}`));
        expect((await log.read(3)).map((e) => e.seq)).toEqual([3, 4, 5, 6, 7, 8, 9]);
        expect((await log.read(3, 2)).map((e) => [e.seq, text(e.data)])).toEqual([[3, 'r3'], [4, 'r4']]);
        expect((await log.read(8, 100)).map((e) => e.seq)).toEqual([8, 9]);
        expect(await log.read(10)).toEqual([]);
        expect(await log.read(1000, 5)).toEqual([]);
        expect(await log.read(0, 0)).toEqual([]);
        expect((await log.read(9, Infinity)).map((e) => e.seq)).toEqual([9]);
      });

      it('returns the last n records with tail, oldest first', async () => {
        const log = await h.store.log('audit');
        expect(await log.tail(3)).toEqual([]);
        await log.appendBatch(['a', 'b', 'c', 'd', 'e']);
        expect((await log.tail(2)).map((e) => [e.seq, text(e.data)])).toEqual([[3, 'd'], [4, 'e']]);
        expect((await log.tail(50)).map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
        expect(await log.tail(0)).toEqual([]);
      });

      it('rejects malformed ranges with INVALID_ARGUMENT', async () => {
        const log = await h.store.log('audit');
        await log.append('a');
        for (const bad of [-1, 1.5, NaN, '1', null]) {
          await failsWith(() => log.read(bad as number), 'INVALID_ARGUMENT');
          await failsWith(() => log.read(0, bad as number), 'INVALID_ARGUMENT');
          await failsWith(() => log.tail(bad as number), 'INVALID_ARGUMENT');
        }
      });

      it('rejects records that are neither bytes nor well-formed strings, appending nothing', async () => {
        const log = await h.store.log('audit');
        for (const bad of [42, null, undefined, {}, [1, 2], 'lone \ud800 surrogate']) {
          await failsWith(() => log.append(bad as string), 'INVALID_ARGUMENT');
        }
        await failsWith(() => log.appendBatch(['ok', 7 as unknown as string]), 'INVALID_ARGUMENT');
        await failsWith(() => log.appendBatch('not an array' as unknown as string[]), 'INVALID_ARGUMENT');
        expect(log.length).toBe(0);
      });

      it('enforces maxRecordBytes with LIMIT_EXCEEDED; an oversized record fails its whole batch', async () => {
        const log = await h.store.log('audit');
        const max = h.store.limits.maxRecordBytes;
        await failsWith(() => log.append(new Uint8Array(max + 1)), 'LIMIT_EXCEEDED');
        await failsWith(() => log.appendBatch(['small', new Uint8Array(max + 1)]), 'LIMIT_EXCEEDED');
        expect(log.length).toBe(0);
        if (checkBoundaries) {
          const big = new Uint8Array(max).fill(7);
          expect(await log.append(big)).toEqual({ seq: 0 });
          const [back] = await log.read(0, 1);
          expect(back!.data.length).toBe(max);
          expect(back!.data[max - 1]).toBe(7);
        }
      });

      it('copies records in and out: changing the caller’s bytes changes nothing stored', async () => {
        const log = await h.store.log('audit');
        const input = bytes('original');
        await log.append(input);
        await log.appendBatch([input]);
        input.fill(0);
        const [first] = await log.read(0, 1);
        first!.data.fill(1);
        expect(await readAll(log)).toEqual(['original', 'original']);
      });

      it('gives the same log for the same name', async () => {
        const a = await h.store.log('audit');
        await a.append('x');
        const b = await h.store.log('audit');
        expect(b.length).toBe(1);
        await b.append('y');
        expect(await readAll(a)).toEqual(['x', 'y']);
      });
    });

    describe('names', () => {
      const good = ['audit', 'trace/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H', 'a', '0', 'a.b-c_d', 'A/b/C', 'x'.repeat(128), 'v1.2/..x'];
      const bad: unknown[] = [
        '',
        '.hidden',
        '-x',
        '_x',
        '/abs',
        'a/',
        'a//b',
        'a/../b',
        '..',
        'a/..',
        'a/./b',
        'x'.repeat(129),
        'a b',
        'a\\b',
        'é',
        'a\u0000',
        'a:b',
        42,
        null,
        undefined,
      ];

      it('accepts well-formed log and namespace names', async () => {
        for (const n of good) {
          await (await h.store.log(n)).append(n);
          await (await h.store.kv(n)).set('k', bytes(n));
        }
        for (const n of good) {
          expect(await readAll(await h.store.log(n))).toEqual([n]);
          expect(text(await (await h.store.kv(n)).get('k'))).toBe(n);
        }
      });

      it('rejects malformed names with INVALID_ARGUMENT', async () => {
        for (const n of bad) {
          await failsWith(() => h.store.log(n as string), 'INVALID_ARGUMENT');
          await failsWith(() => h.store.kv(n as string), 'INVALID_ARGUMENT');
        }
      });

      it('keeps names that differ only in case apart', async () => {
        await (await h.store.log('Audit')).append('upper');
        await (await h.store.log('audit')).append('lower');
        expect(await readAll(await h.store.log('Audit'))).toEqual(['upper']);
        expect(await readAll(await h.store.log('audit'))).toEqual(['lower']);
      });
    });

    describe('isolation', () => {
      it('keeps logs apart, including a log whose name prefixes another', async () => {
        const a = await h.store.log('trace');
        const b = await h.store.log('trace/ctr_1');
        const c = await h.store.log('trace/ctr_10');
        await a.append('a');
        await b.appendBatch(['b1', 'b2']);
        await c.append('c');
        expect(await readAll(a)).toEqual(['a']);
        expect(await readAll(b)).toEqual(['b1', 'b2']);
        expect(await readAll(c)).toEqual(['c']);
      });

      it('keeps namespaces apart from each other and from a log of the same name', async () => {
        const n1 = await h.store.kv('state');
        const n2 = await h.store.kv('state/ctr_1');
        const log = await h.store.log('state');
        await n1.set('k', bytes('one'));
        await n2.set('k', bytes('two'));
        await log.append('log');
        expect(text(await n1.get('k'))).toBe('one');
        expect(text(await n2.get('k'))).toBe('two');
        await n1.delete('k');
        expect(await n1.get('k')).toBeUndefined();
        expect(text(await n2.get('k'))).toBe('two');
        expect(await n2.list()).toEqual(['k']);
        expect(await readAll(log)).toEqual(['log']);
      });
    });

    describe('key-value namespaces', () => {
      it('sets, gets, overwrites and deletes', async () => {
        const kv = await h.store.kv('state');
        expect(kv.namespace).toBe('state');
        expect(await kv.get('missing')).toBeUndefined();
        await kv.set('k', bytes('v1'));
        expect(text(await kv.get('k'))).toBe('v1');
        await kv.set('k', bytes('v2'));
        expect(text(await kv.get('k'))).toBe('v2');
        await kv.set('empty', new Uint8Array(0));
        expect(await kv.get('empty')).toEqual(new Uint8Array(0));
        expect(await kv.delete('k')).toBe(true);
        expect(await kv.delete('k')).toBe(false);
        expect(await kv.delete('never')).toBe(false);
        expect(await kv.get('k')).toBeUndefined();
        expect(await kv.list()).toEqual(['empty']);
      });

      it('lists keys sorted, optionally by prefix', async () => {
        const kv = await h.store.kv('state');
        expect(await kv.list()).toEqual([]);
        for (const k of ['b', 'a/2', 'a/10', 'a', 'ab', 'é', 'Z']) await kv.set(k, bytes(k));
        expect(await kv.list()).toEqual(['Z', 'a', 'a/10', 'a/2', 'ab', 'b', 'é']);
        expect(await kv.list('a')).toEqual(['a', 'a/10', 'a/2', 'ab']);
        expect(await kv.list('a/')).toEqual(['a/10', 'a/2']);
        expect(await kv.list('')).toEqual(['Z', 'a', 'a/10', 'a/2', 'ab', 'b', 'é']);
        expect(await kv.list('nothing')).toEqual([]);
        await failsWith(() => kv.list(5 as unknown as string), 'INVALID_ARGUMENT');
      });

      it('applies concurrent sets and deletes in call order', async () => {
        const kv = await h.store.kv('state');
        const results = await Promise.all([
          kv.set('k', bytes('1')),
          kv.delete('k'),
          kv.delete('k'),
          kv.set('k', bytes('2')),
          kv.set('k', bytes('3')),
          kv.set('other', bytes('x')),
          kv.delete('other'),
        ]);
        expect(results).toEqual([undefined, true, false, undefined, undefined, undefined, true]);
        expect(text(await kv.get('k'))).toBe('3');
        expect(await kv.list()).toEqual(['k']);
      });

      it('enforces key limits: 1 to 1024 UTF-8 bytes, well-formed', async () => {
        const kv = await h.store.kv('state');
        expect(h.store.limits.maxKeyBytes).toBe(1024);
        await kv.set('k'.repeat(1024), bytes('ascii'));
        await kv.set('é'.repeat(512), bytes('two-byte'));
        expect(text(await kv.get('é'.repeat(512)))).toBe('two-byte');
        await failsWith(() => kv.set('k'.repeat(1025), bytes('x')), 'LIMIT_EXCEEDED');
        await failsWith(() => kv.set('é'.repeat(513), bytes('x')), 'LIMIT_EXCEEDED');
        await failsWith(() => kv.get('k'.repeat(5000)), 'LIMIT_EXCEEDED');
        await failsWith(() => kv.set('', bytes('x')), 'INVALID_ARGUMENT');
        await failsWith(() => kv.set('lone \udc00', bytes('x')), 'INVALID_ARGUMENT');
        await failsWith(() => kv.get(7 as unknown as string), 'INVALID_ARGUMENT');
        await failsWith(() => kv.delete(undefined as unknown as string), 'INVALID_ARGUMENT');
        expect((await kv.list()).length).toBe(2);
      });

      it('enforces maxValueBytes with LIMIT_EXCEEDED and rejects values that are not bytes', async () => {
        const kv = await h.store.kv('state');
        const max = h.store.limits.maxValueBytes;
        await failsWith(() => kv.set('big', new Uint8Array(max + 1)), 'LIMIT_EXCEEDED');
        await failsWith(() => kv.set('str', 'text' as unknown as Uint8Array), 'INVALID_ARGUMENT');
        await failsWith(() => kv.set('none', undefined as unknown as Uint8Array), 'INVALID_ARGUMENT');
        expect(await kv.list()).toEqual([]);
        if (checkBoundaries) {
          await kv.set('big', new Uint8Array(max).fill(9));
          const back = await kv.get('big');
          expect(back!.length).toBe(max);
          expect(back![max - 1]).toBe(9);
        }
      });

      it('copies values in and out', async () => {
        const kv = await h.store.kv('state');
        const v = bytes('value');
        await kv.set('k', v);
        v.fill(0);
        (await kv.get('k'))!.fill(1);
        expect(text(await kv.get('k'))).toBe('value');
      });

      it('gives the same map for the same namespace', async () => {
        const a = await h.store.kv('state');
        await a.set('k', bytes('v'));
        expect(text(await (await h.store.kv('state')).get('k'))).toBe('v');
      });
    });

    describe('close', () => {
      it('finishes pending writes, then refuses further calls with IO_ERROR; closing twice is harmless', async () => {
        const log = await h.store.log('audit');
        const kv = await h.store.kv('state');
        const pending = [log.append('last'), kv.set('k', bytes('v'))];
        await h.store.close();
        await Promise.all(pending);
        await failsWith(() => log.append('after'), 'IO_ERROR');
        await failsWith(() => log.read(), 'IO_ERROR');
        await failsWith(() => kv.get('k'), 'IO_ERROR');
        await failsWith(() => kv.set('k', bytes('v')), 'IO_ERROR');
        await failsWith(() => h.store.log('audit'), 'IO_ERROR');
        await failsWith(() => h.store.kv('state'), 'IO_ERROR');
        await h.store.close();
      });
    });

    describe('persistence', () => {
      it('keeps records, sequence numbers and values across reopen, and continues the sequence', async (ctx) => {
        if (!h.persistent) return ctx.skip('this store does not persist');
        const log = await h.store.log('trace/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H');
        await log.appendBatch(['a', 'b']);
        await log.append(bytes('c'));
        const kv = await h.store.kv('state');
        await kv.set('keep', bytes('1'));
        await kv.set('over', bytes('old'));
        await kv.set('over', bytes('new'));
        await kv.set('gone', bytes('x'));
        await kv.delete('gone');
        await kv.set('é'.repeat(512), new Uint8Array(0));

        let store = await h.reopen();
        const log2 = await store.log('trace/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H');
        expect(log2.length).toBe(3);
        expect(await readAll(log2)).toEqual(['a', 'b', 'c']);
        expect(await log2.append('d')).toEqual({ seq: 3 });
        const kv2 = await store.kv('state');
        expect(await kv2.list()).toEqual(['keep', 'over', 'é'.repeat(512)]);
        expect(text(await kv2.get('over'))).toBe('new');
        expect(await kv2.get('gone')).toBeUndefined();
        expect(await kv2.get('é'.repeat(512))).toEqual(new Uint8Array(0));
        await kv2.delete('keep');

        store = await h.reopen();
        expect(await readAll(await store.log('trace/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H'))).toEqual(['a', 'b', 'c', 'd']);
        expect(await (await store.kv('state')).list()).toEqual(['over', 'é'.repeat(512)]);
        expect((await store.log('audit')).length).toBe(0);
      });

      it('keeps many overwrites of few keys (the final value of each) across reopen', async (ctx) => {
        if (!h.persistent) return ctx.skip('this store does not persist');
        const kv = await h.store.kv('state');
        const expected = new Map<string, string>();
        for (let i = 0; i < 400; i++) {
          const k = `k${i % 7}`;
          if (i % 5 === 4) {
            await kv.delete(k);
            expected.delete(k);
          } else {
            const v = `${i}-`.repeat(1 + (i % 50));
            await kv.set(k, bytes(v));
            expected.set(k, v);
          }
        }
        const kv2 = await (await h.reopen()).kv('state');
        expect(await kv2.list()).toEqual([...expected.keys()].sort());
        for (const [k, v] of expected) expect(text(await kv2.get(k))).toBe(v);
      });
    });

    describe('properties', () => {
      it('random operation sequences behave like arrays and Maps (with reopens when the store persists)', async () => {
        const probe = await makeStore();
        const withReopen = probe.reopen !== undefined;
        await probe.store.close();
        await probe.dispose?.();
        await fc.assert(
          fc.asyncProperty(fc.array(opArbitrary(withReopen), { maxLength: 40 }), async (ops) => {
            const run = new Harness(await makeStore());
            try {
              const logs: string[][] = LOGS.map(() => []);
              const maps: Map<string, string>[] = NAMESPACES.map(() => new Map());
              for (const op of ops) {
                const store = run.store;
                switch (op.t) {
                  case 'append': {
                    const { seq } = await (await store.log(LOGS[op.log]!)).append(op.data);
                    expect(seq).toBe(logs[op.log]!.length);
                    logs[op.log]!.push(hex(op.data));
                    break;
                  }
                  case 'batch': {
                    const r = await (await store.log(LOGS[op.log]!)).appendBatch(op.data);
                    expect(r).toEqual({ firstSeq: logs[op.log]!.length, count: op.data.length });
                    logs[op.log]!.push(...op.data.map(hex));
                    break;
                  }
                  case 'read': {
                    const got = await (await store.log(LOGS[op.log]!)).read(op.from, op.limit);
                    const want = logs[op.log]!.slice(op.from, op.from + op.limit).map((d, i) => [op.from + i, d]);
                    expect(got.map((e) => [e.seq, hex(e.data)])).toEqual(want);
                    break;
                  }
                  case 'tail': {
                    const log = await store.log(LOGS[op.log]!);
                    const model = logs[op.log]!;
                    expect(log.length).toBe(model.length);
                    const start = Math.max(0, model.length - op.n);
                    expect((await log.tail(op.n)).map((e) => [e.seq, hex(e.data)])).toEqual(model.slice(start).map((d, i) => [start + i, d]));
                    break;
                  }
                  case 'set':
                    await (await store.kv(NAMESPACES[op.ns]!)).set(op.key, op.value);
                    maps[op.ns]!.set(op.key, hex(op.value));
                    break;
                  case 'delete':
                    expect(await (await store.kv(NAMESPACES[op.ns]!)).delete(op.key)).toBe(maps[op.ns]!.delete(op.key));
                    break;
                  case 'get': {
                    const v = await (await store.kv(NAMESPACES[op.ns]!)).get(op.key);
                    expect(v === undefined ? undefined : hex(v)).toBe(maps[op.ns]!.get(op.key));
                    break;
                  }
                  case 'list':
                    expect(await (await store.kv(NAMESPACES[op.ns]!)).list(op.prefix)).toEqual(
                      [...maps[op.ns]!.keys()].filter((k) => k.startsWith(op.prefix)).sort(),
                    );
                    break;
                  case 'reopen':
                    await run.reopen();
                    break;
                }
              }
              // The final state, in full.
              for (let i = 0; i < LOGS.length; i++) expect((await (await run.store.log(LOGS[i]!)).read()).map((e) => hex(e.data))).toEqual(logs[i]);
              for (let i = 0; i < NAMESPACES.length; i++) expect(await snapshotKv(await run.store.kv(NAMESPACES[i]!))).toEqual(maps[i]);
            } finally {
              await run.dispose();
            }
          }),
          { numRuns },
        );
      });

      it('concurrent writes, issued without waiting, end as if applied one by one in call order', async () => {
        type W =
          | { t: 'append'; data: Uint8Array }
          | { t: 'batch'; data: Uint8Array[] }
          | { t: 'set'; key: string; value: Uint8Array }
          | { t: 'delete'; key: string };
        const key = fc.constantFrom('a', 'b', 'c');
        const data = fc.uint8Array({ maxLength: 32 });
        const write: fc.Arbitrary<W> = fc.oneof(
          fc.record({ t: fc.constant('append' as const), data }),
          fc.record({ t: fc.constant('batch' as const), data: fc.array(data, { maxLength: 4 }) }),
          fc.record({ t: fc.constant('set' as const), key, value: data }),
          fc.record({ t: fc.constant('delete' as const), key }),
        );
        await fc.assert(
          fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 40 }), async (writes) => {
            const run = new Harness(await makeStore());
            try {
              const log = await run.store.log('audit');
              const kv = await run.store.kv('state');
              const results = await Promise.all(
                writes.map((w) => {
                  switch (w.t) {
                    case 'append':
                      return log.append(w.data);
                    case 'batch':
                      return log.appendBatch(w.data);
                    case 'set':
                      return kv.set(w.key, w.value);
                    case 'delete':
                      return kv.delete(w.key);
                  }
                }),
              );
              const records: string[] = [];
              const map = new Map<string, string>();
              writes.forEach((w, i) => {
                const r = results[i];
                if (w.t === 'append') {
                  expect(r).toEqual({ seq: records.length });
                  records.push(hex(w.data));
                } else if (w.t === 'batch') {
                  expect(r).toEqual({ firstSeq: records.length, count: w.data.length });
                  records.push(...w.data.map(hex));
                } else if (w.t === 'set') {
                  map.set(w.key, hex(w.value));
                } else {
                  expect(r).toBe(map.delete(w.key));
                }
              });
              expect((await log.read()).map((e) => hex(e.data))).toEqual(records);
              expect(await snapshotKv(kv)).toEqual(map);
            } finally {
              await run.dispose();
            }
          }),
          { numRuns },
        );
      });
    });
  });
}
