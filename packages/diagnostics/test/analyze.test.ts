import { createIdentity, trustVector } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import { createTraceWriter, exportTrace, parseTrace } from '@forgeone/observer';
import type { AnomalyFlag, TraceCallRecord } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import { analyzeTrace, createDetectorSet, createFrequencyDetector, createRuleDetector, createSequenceDetector, createStoreBaselines, runIntegrity, traceKey } from '../src/index.js';
import { KEYS, attackRun, normalRun } from './synth.js';

const provider = new NodeCryptoProvider();
const kernel = SigningKey.generate(provider);

async function trace(id: string, records: TraceCallRecord[], flags: readonly AnomalyFlag[] = []) {
  const store = createMemoryStore();
  const w = await createTraceWriter({
    store,
    crypto: provider,
    signingKey: kernel,
    header: {
      traceId: id,
      containerId: `ctr-${id}`,
      identity: createIdentity({ subject: 'plugin:kv-counter', trust: trustVector('Verified') }),
      package: { name: 'kv-counter', version: '1.0.0', hash: '' },
      policy: { name: 'default', version: 1 },
      startTime: records[0]!.start,
    },
  });
  await w.append(records);
  await w.stop({ outcome: 'exited', exitCode: 0, flags });
  return parseTrace(await exportTrace(store, id), provider);
}

describe('analyzeTrace', () => {
  it('adds the detectors’ flags to the explanation: integrity and verdict reflect anomalies and denials', async () => {
    const baselines = createStoreBaselines(createMemoryStore());
    const detector = createDetectorSet([createSequenceDetector({ baselines }), createFrequencyDetector({ baselines }), createRuleDetector()]);
    await detector.learn(Array.from({ length: 20 }, (_, i) => normalRun('kv-counter', i)), KEYS['kv-counter']);

    const normal = await trace('normal', normalRun('kv-counter', 999));
    expect(traceKey(normal)).toEqual(KEYS['kv-counter']);
    const ok = await analyzeTrace(normal, detector);
    expect(ok.anomaly.score).toBe(0);
    expect(ok.explanation.json.verdict.level).toBe('clean');
    expect(ok.explanation.json.integrity.score).toBe(1);

    const rogue = await trace('rogue', attackRun('kv-counter', 'dotdot', 4));
    const bad = await analyzeTrace(rogue, detector, { flags: [{ name: 'operator-note', severity: 'low' }] });
    expect(bad.anomaly.score).toBe(1);
    const names = bad.explanation.json.flags.map((f) => f.name);
    expect(names[0]).toBe('operator-note');
    expect(names).toEqual(expect.arrayContaining(['unseen-call-sequence', 'new-syscall', 'kv-escape-key']));
    expect(bad.explanation.json.verdict.level).toBe('compromised');
    expect(bad.explanation.json.integrity.penalties.map((p) => p.cause)).toEqual(expect.arrayContaining(['high flags']));
    expect(bad.explanation.text).toContain('[high] kv-escape-key: forgeone:kv/get with an escape-shaped key ../../../etc/passwd (allow)');
    expect(runIntegrity(rogue.records, bad.explanation.json.flags)).toBe(bad.explanation.json.integrity.score);
  });

  it('counts a flag once when the kernel already put it in the trace summary (scored at stop by the same detector)', async () => {
    const baselines = createStoreBaselines(createMemoryStore());
    const detector = createDetectorSet([createSequenceDetector({ baselines }), createFrequencyDetector({ baselines }), createRuleDetector()]);
    await detector.learn(Array.from({ length: 20 }, (_, i) => normalRun('kv-counter', i)), KEYS['kv-counter']);
    const records = attackRun('kv-counter', 'dotdot', 4);
    const atStop = await detector.score(records, KEYS['kv-counter']);
    expect(atStop.flags.length).toBeGreaterThan(0);
    const note = { name: 'operator-note', severity: 'low' } as const;
    const scored = await trace('scored', records, [...atStop.flags, note]);
    const unscored = await trace('unscored', records, [note]);
    const again = await analyzeTrace(scored, detector);
    const once = await analyzeTrace(unscored, detector);
    expect(again.explanation.json.flags).toHaveLength(atStop.flags.length + 1);
    expect(again.explanation.json.integrity).toEqual(once.explanation.json.integrity);
    expect(runIntegrity(records, again.explanation.json.flags)).toBe(again.explanation.json.integrity.score);
  });
});
