import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utf8 } from '@forgeone/common';
import type { TraceCallRecord } from '@forgeone/observer';
import { createFileStore, createMemoryStore } from '@forgeone/store';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BASELINE_NAMESPACE,
  DEFAULT_DETECTION_RULES,
  coarseTarget,
  createDetectorSet,
  createFrequencyDetector,
  createRuleDetector,
  createSequenceDetector,
  createStoreBaselines,
  parseDetectionRules,
} from '../src/index.js';
import type { AnomalyDetector, BaselineKey } from '../src/index.js';
import { KEYS, attackRun, normalRun, records, rng } from './synth.js';
import type { Call } from './synth.js';

const key: BaselineKey = { packageName: 'demo', packageVersion: '1.0.0' };
const T0 = Date.UTC(2026, 0, 1);
const run = (calls: (string | Call)[], t0 = T0): TraceCallRecord[] =>
  records(
    calls.map((c) => (typeof c === 'string' ? { syscall: c } : c)),
    t0,
    rng(7),
  );

function fresh() {
  return createStoreBaselines(createMemoryStore());
}

describe('sequence detector', () => {
  it('scores normal runs 0 and names the first unseen window with its record', async () => {
    const d = createSequenceDetector({ baselines: fresh(), window: 3 });
    await d.learn([run(['a:x/get', 'a:x/set', 'a:log/write']), run(['a:x/get', 'a:log/write'])], key);
    expect(await d.score(run(['a:x/get', 'a:x/set', 'a:log/write']), key)).toEqual({ detector: 'sequence', score: 0, flags: [], baseline: true });
    const r = await d.score(run(['a:x/get', 'a:net/fetch', 'a:x/set', 'a:log/write']), key);
    // Windows: (^ get fetch) (get fetch set) (fetch set log) (set log $): three unseen of four.
    expect(r.score).toBeCloseTo(0.75);
    expect(r.flags).toHaveLength(1);
    expect(r.flags[0]).toMatchObject({ name: 'unseen-call-sequence', severity: 'medium', seq: 1 });
    expect(r.flags[0]!.detail).toContain('3 of 4 call windows');
    expect(r.flags[0]!.detail).toContain('(start) → a:x/get → a:net/fetch');
  });

  it('tells a refused call from a performed one, unless told not to', async () => {
    const refused: Call = { syscall: 'a:x/get', verdict: 'deny' };
    for (const withVerdict of [true, false]) {
      const d = createSequenceDetector({ baselines: fresh(), window: 2, withVerdict });
      await d.learn([run(['a:x/get', 'a:log/write'])], key);
      const r = await d.score(run([refused, 'a:log/write']), key);
      expect(r.score > 0).toBe(withVerdict);
      if (withVerdict) expect(r.flags[0]!.detail).toContain('a:x/get (refused)');
    }
  });

  it('handles runs shorter than the window and empty runs', async () => {
    const d = createSequenceDetector({ baselines: fresh(), window: 6 });
    await d.learn([run(['a:log/write']), []], key);
    expect((await d.score(run(['a:log/write']), key)).score).toBe(0);
    expect((await d.score([], key)).score).toBe(0);
    const two = await d.score(run(['a:log/write', 'a:log/write']), key);
    expect(two.score).toBe(1);
    expect(two.flags[0]).toMatchObject({ severity: 'high', seq: 1 });
  });

  it('finds a short burst in a long run through the locality frame', async () => {
    const normal = Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? 'a:x/get' : 'a:x/set'));
    const d = createSequenceDetector({ baselines: fresh(), window: 3, frame: 10 });
    await d.learn([run(normal)], key);
    const burst = [...normal.slice(0, 200), 'a:net/fetch', 'a:net/fetch', 'a:net/fetch', 'a:net/fetch', ...normal.slice(200)];
    const r = await d.score(run(burst), key);
    // 6 unseen windows of 403: a rate of 1.5 %, but 6 of 10 in the densest frame.
    expect(r.score).toBeCloseTo(0.6);
    expect(r.flags[0]).toMatchObject({ severity: 'medium', seq: 200 });
  });

  it('raises flags while watching, escalating with the severity, and finish() matches score()', async () => {
    const d = createSequenceDetector({ baselines: fresh(), window: 2 });
    await d.learn([run(['a:x/get', 'a:x/set'])], key);
    const attack = run(['a:x/get', 'a:x/set', 'a:net/fetch', 'a:net/fetch', 'a:net/fetch']);
    const o = await d.start(key);
    const raised = attack.map((r) => o.observe(r));
    expect(raised.slice(0, 2)).toEqual([null, null]);
    expect(raised[2]).toMatchObject([{ name: 'unseen-call-sequence', seq: 2 }]);
    const severities = raised.flatMap((f) => f ?? []).map((f) => f.severity);
    expect(new Set(severities).size).toBe(severities.length);
    expect(o.finish()).toEqual(await d.score(attack, key));
    expect(() => o.observe(attack[0]!)).toThrow(/finished/);
  });

  it('says when there is no baseline, refuses a baseline of another window, caps what it learns', async () => {
    const baselines = fresh();
    const d = createSequenceDetector({ baselines, window: 3, maxWindows: 2 });
    expect(await d.score(run(['a:x/get']), key)).toEqual({ detector: 'sequence', score: 0, flags: [], baseline: false });
    await d.learn([run(['a:a/a', 'a:b/b', 'a:c/c', 'a:d/d'])], key);
    const stored = (await baselines.get('sequence', key)) as { windows: string[]; saturated: boolean };
    expect(stored.windows).toHaveLength(2);
    expect(stored.saturated).toBe(true);
    await expect(createSequenceDetector({ baselines, window: 4 }).score([], key)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'window' } });
    expect(() => createSequenceDetector({ baselines, window: 1 })).toThrow(/window/);
    expect(() => createFrequencyDetector({} as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'baselines' } }));
  });

  it('rejects malformed keys and records, naming the field', async () => {
    const d = createSequenceDetector({ baselines: fresh() });
    await expect(d.score([], { packageName: '', packageVersion: '1' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'key.packageName' } });
    await expect(d.learn([[{ seq: 0 } as unknown as TraceCallRecord]], key)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'runs[0][0].syscall' } });
    await expect(d.learn('x' as unknown as TraceCallRecord[][], key)).rejects.toMatchObject({ details: { field: 'runs' } });
  });
});

describe('frequency detector', () => {
  it('flags a new syscall, high when it was refused', async () => {
    const d = createFrequencyDetector({ baselines: fresh() });
    await d.learn([run(['a:x/get', 'a:log/write'])], key);
    const r = await d.score(run(['a:x/get', { syscall: 'wasi:filesystem/read', args: { path: '/etc/passwd' }, verdict: 'deny' }]), key);
    expect(r.flags).toEqual([expect.objectContaining({ name: 'new-syscall', severity: 'high', seq: 1 })]);
    expect(r.score).toBe(0.85);
    const allowed = await d.score(run(['a:x/get', 'a:other/op']), key);
    expect(allowed.flags[0]).toMatchObject({ name: 'new-syscall', severity: 'medium' });
  });

  it('flags counts above every normal run and far above the mean, not ordinary variation', async () => {
    const d = createFrequencyDetector({ baselines: fresh() });
    const n = (k: number) => run(Array.from({ length: k }, () => ({ syscall: 'a:x/get', gap: 1500 })));
    await d.learn([n(3), n(4), n(5), n(4), n(3)], key);
    expect((await d.score(n(6), key)).flags).toEqual([]);
    const r = await d.score(n(40), key);
    expect(r.flags.map((f) => f.name)).toEqual(['call-count']);
    expect(r.flags[0]!.detail).toMatch(/40 calls; normal runs make 3\.8 on average, at most 5/);
    expect(r.score).toBeGreaterThan(0.8);
    // The flag names the record where the count crossed the line (z >= 3 past the maximum).
    expect(r.flags[0]!.seq).toBe(6);
  });

  it('flags a burst: the peak rate within the window against the normal peak', async () => {
    const d = createFrequencyDetector({ baselines: fresh(), rateWindowMs: 1000 });
    const spread = (k: number, gap: number) => run(Array.from({ length: k }, () => ({ syscall: 'a:x/get', gap })));
    await d.learn([spread(20, 500), spread(20, 600)], key);
    // As many calls as a normal run, but all within one second.
    const r = await d.score(spread(20, 10), key);
    expect(r.flags.map((f) => f.name)).toEqual(['call-rate']);
    expect(r.flags[0]!.detail).toContain('20 calls within 1000 ms; the normal peak is 2');
  });

  it('learns coarse targets and flags new ones (low, or medium when refused)', async () => {
    const kv = (k: string, verdict: 'allow' | 'deny' = 'allow'): Call => ({ syscall: 'forgeone:kv/get', args: { detail: k, path: `/${k}` }, verdict });
    const fetch = (host: string): Call => ({ syscall: 'forgeone:http/fetch', args: { host, port: 443, detail: 'GET https' } });
    const d = createFrequencyDetector({ baselines: fresh() });
    await d.learn([run([kv('counter/a'), fetch('www.example.com')])], key);
    expect((await d.score(run([kv('counter/zzz'), fetch('api.example.com')]), key)).flags).toEqual([]);
    const r = await d.score(run([kv('secrets/x'), fetch('evil.net'), kv('other/y', 'deny')]), key);
    expect(r.flags.map((f) => [f.name, f.severity, f.seq])).toEqual([
      ['new-target', 'medium', 0],
      ['new-target', 'low', 1],
    ]);
    expect(r.flags[0]!.detail).toContain('key secrets/…, key other/…');
    expect(coarseTarget(run([{ syscall: 'forgeone:kv/get', args: { detail: '../x' } }])[0]!)).toBe('key ../x');
    expect(coarseTarget(run([{ syscall: 'wasi:filesystem/read', args: { path: '/data/a/b/c' } }])[0]!)).toBe('/data/a');
    expect(coarseTarget(run([{ syscall: 'wasi:sockets/tcp-connect', args: { host: '10.0.0.1', port: 22 } }])[0]!)).toBe('10.0.0.1:22');
  });

  it('keeps baselines in the store across detector instances and restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forgeone-diag-'));
    try {
      const s1 = await createFileStore({ dir });
      await createFrequencyDetector({ baselines: createStoreBaselines(s1) }).learn([normalRun('hello', 1), normalRun('hello', 2)], KEYS.hello);
      await s1.close();
      const s2 = await createFileStore({ dir });
      const d = createFrequencyDetector({ baselines: createStoreBaselines(s2) });
      expect((await d.score(normalRun('hello', 3), KEYS.hello)).baseline).toBe(true);
      expect((await d.score(attackRun('hello', 'passwd', 3), KEYS.hello)).score).toBeGreaterThanOrEqual(0.5);
      expect((await d.score(normalRun('hello', 3), { packageName: 'hello', packageVersion: '2.0.0' })).baseline).toBe(false);
      await s2.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a damaged baseline with STATE_CORRUPT, and learns twice at once without losing a run', async () => {
    const store = createMemoryStore();
    const baselines = createStoreBaselines(store);
    const d = createFrequencyDetector({ baselines });
    await Promise.all([d.learn([run(['a:x/get'])], key), d.learn([run(['a:x/get'])], key), d.learn([run(['a:x/get'])], key)]);
    expect(((await baselines.get('frequency', key)) as { runs: number }).runs).toBe(3);
    const kv = await store.kv(DEFAULT_BASELINE_NAMESPACE);
    await kv.set('frequency/demo/1.0.0', utf8('{"format":"forgeone.baseline/v1","detector":"frequency","packageName":"demo","packageVersion":"1.0.0","data":{"runs":"many"}}'));
    await expect(createFrequencyDetector({ baselines }).score([], key)).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
    await kv.set('frequency/demo/1.0.0', utf8('{"format":"forgeone.baseline/v1","detector":"frequency","packageName":"other","packageVersion":"1.0.0","data":{}}'));
    await expect(baselines.get('frequency', key)).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
    await kv.set('frequency/demo/1.0.0', utf8('not json'));
    await expect(baselines.get('frequency', key)).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
    expect(await baselines.list('frequency')).toEqual([{ detector: 'frequency', packageName: 'demo', packageVersion: '1.0.0' }]);
    expect(await baselines.delete('frequency', key)).toBe(true);
    expect(await baselines.list()).toEqual([]);
    await expect(baselines.get('Bad Name', key)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'detector' } });
  });
});

describe('rule detector', () => {
  it('the default rules catch the rogue attempts they describe', async () => {
    const d = createRuleDetector();
    const names = async (attack: Parameters<typeof attackRun>[1]) => (await d.score(attackRun('kv-counter', attack, 1), KEYS['kv-counter'])).flags.map((f) => f.name);
    expect(await names('passwd')).toEqual(['file-url', 'kv-escape-key']);
    expect(await names('net')).toEqual(['metadata-address', 'loopback']);
    expect(await names('wasi-fs')).toEqual(['sensitive-file']);
    expect((await d.score(normalRun('kv-counter', 1), KEYS['kv-counter'])).flags).toEqual([]);
    const r = await d.score(attackRun('hello', 'net', 1), KEYS.hello);
    expect(r.score).toBe(1);
    expect(r.baseline).toBe(false);
    expect(r.flags[0]!.detail).toBe('forgeone:http/fetch to the cloud metadata address 169.254.169.254:80 (deny)');
    expect(DEFAULT_DETECTION_RULES.map((x) => x.id)).toContain('burst-of-denials');
  });

  it('counts, windows and renders templates; fires once per run', async () => {
    const d = createRuleDetector({
      rules: [
        { id: 'tmp-writes', when: { syscall: 'wasi:filesystem/write', args: { path: '/tmp/**' }, countAtLeast: 3 }, priority: 'low', output: '{count} writes under /tmp, the last {path} at #{seq}' },
        { id: 'fast-denials', when: { verdict: ['deny'], countAtLeast: 2, withinMs: 100 }, priority: 'medium', output: '{count} denials within 100 ms ({rule})' },
      ],
    });
    const w = (path: string, gap = 1): Call => ({ syscall: 'wasi:filesystem/write', args: { path }, gap });
    const deny = (gap: number): Call => ({ syscall: 'a:x/get', verdict: 'deny', gap });
    const r = await d.score(run([w('/tmp/a'), w('/data/x'), w('/tmp/b/c'), deny(500), deny(500), w('/tmp/d'), w('/tmp/e'), deny(10)]), key);
    expect(r.flags).toEqual([
      { name: 'tmp-writes', severity: 'low', detail: '3 writes under /tmp, the last /tmp/d at #5', seq: 5 },
      { name: 'fast-denials', severity: 'medium', detail: '2 denials within 100 ms (default action)', seq: 7 },
    ]);
    expect(r.score).toBe(0.6);
  });

  it('validates rules and names the bad field', () => {
    const bad = (rules: unknown) => {
      try {
        parseDetectionRules(rules);
      } catch (e) {
        return (e as { code: string; details: { field: string } }).details.field;
      }
      return 'accepted';
    };
    const ok = { id: 'r', when: {}, priority: 'low', output: 'x' };
    expect(bad([ok])).toBe('accepted');
    expect(bad([{ ...ok, when: { args: { port: [70000] } } }])).toBe('rules[0].when.args.port[0]');
    expect(bad([ok, { ...ok, output: 'the {password}' }])).toBe('rules[1].output');
    expect(bad([ok, ok])).toBe('rules[1].id');
    expect(bad([{ ...ok, when: { withinMs: 5 } }])).toBe('rules[0].when.withinMs');
    expect(bad([{ ...ok, priority: 'urgent' }])).toBe('rules[0].priority');
    expect(bad([{ ...ok, extra: 1 }])).toBe('rules[0]');
    expect(() => createRuleDetector({ rules: 'nope' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('detector sets', () => {
  const setup = async () => {
    const baselines = fresh();
    const parts: AnomalyDetector[] = [createSequenceDetector({ baselines }), createFrequencyDetector({ baselines }), createRuleDetector()];
    const train = Array.from({ length: 10 }, (_, i) => normalRun('kv-counter', i));
    const set = createDetectorSet(parts);
    await set.learn(train, KEYS['kv-counter']);
    return { baselines, parts, set };
  };

  it('combines by max or weighted mean and keeps each part', async () => {
    const { parts, set } = await setup();
    const attack = attackRun('kv-counter', 'passwd', 3);
    const r = await set.score(attack, KEYS['kv-counter']);
    expect(r.parts.map((p) => p.detector)).toEqual(['sequence', 'frequency', 'rules']);
    expect(r.score).toBe(Math.max(...r.parts.map((p) => p.score)));
    expect(r.flags).toEqual(r.parts.flatMap((p) => p.flags));
    const weighted = createDetectorSet(parts, { combine: 'weighted', weights: { rules: 2, frequency: 0 } });
    const w = await weighted.score(attack, KEYS['kv-counter']);
    expect(w.score).toBeCloseTo((r.parts[0]!.score + 2 * r.parts[2]!.score) / 3);
    expect(() => createDetectorSet([])).toThrow(/at least one/);
    expect(() => createDetectorSet([parts[0]!, parts[0]!])).toThrow(/two detectors are named sequence/);
    expect(() => createDetectorSet(parts, { weights: { rules: -1 } })).toThrow(expect.objectContaining({ details: { field: 'weights.rules' } }));
  });

  it('watching a run gives the same result as scoring it, and every final flag was raised while watching', async () => {
    const { set } = await setup();
    const attacks = ['passwd', 'write-outside', 'dotdot', 'symlink', 'net', 'wasi-fs', 'kv-burst'] as const;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...attacks), fc.integer({ min: 0, max: 10_000 }), fc.boolean(), async (attack, seed, normal) => {
        const records = normal ? normalRun('kv-counter', 100 + seed) : attackRun('kv-counter', attack, seed);
        const o = await set.start(KEYS['kv-counter']);
        const early = new Set<string>();
        for (const r of records) for (const f of o.observe(r) ?? []) early.add(f.name);
        const done = o.finish();
        expect(done).toEqual(await set.score(records, KEYS['kv-counter']));
        for (const f of done.flags) expect(early.has(f.name), f.name).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
