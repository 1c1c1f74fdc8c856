// Evaluation: detectors learn each example plugin from normal runs, then score fresh normal runs (false
// positives) and compromised runs carrying plugins/rogue's attempts (detections). A run is flagged when the
// combined score reaches 0.5.
import { createMemoryStore } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import { createDetectorSet, createFrequencyDetector, createRuleDetector, createSequenceDetector, createStoreBaselines } from '../src/index.js';
import type { AnomalyDetector } from '../src/index.js';
import { ATTACKS, KEYS, PLUGINS, attackRun, mimicryRun, normalRun } from './synth.js';

const THRESHOLD = 0.5;
const TRAIN = 40;
const NORMAL = 100;
const PER_ATTACK = 5;

interface Tally {
  normal: number;
  falsePositives: number;
  attacks: number;
  detected: number;
  missed: string[];
}

async function evaluate(detector: AnomalyDetector, train = TRAIN): Promise<Tally> {
  const tally: Tally = { normal: 0, falsePositives: 0, attacks: 0, detected: 0, missed: [] };
  for (const [p, plugin] of PLUGINS.entries()) {
    const key = KEYS[plugin];
    await detector.learn(Array.from({ length: train }, (_, i) => normalRun(plugin, 1000 * p + i)), key);
    for (let i = 0; i < NORMAL; i++) {
      const r = await detector.score(normalRun(plugin, 50_000 + 1000 * p + i), key);
      tally.normal++;
      if (r.score >= THRESHOLD) tally.falsePositives++;
    }
    for (const attack of ATTACKS) {
      for (let i = 0; i < PER_ATTACK; i++) {
        const r = await detector.score(attackRun(plugin, attack, 90_000 + 100 * p + i), key);
        tally.attacks++;
        if (r.score >= THRESHOLD) tally.detected++;
        else tally.missed.push(`${plugin}/${attack}#${i} (${r.score.toFixed(2)})`);
      }
    }
  }
  return tally;
}

function detectors() {
  const baselines = createStoreBaselines(createMemoryStore());
  return {
    sequence: createSequenceDetector({ baselines }),
    frequency: createFrequencyDetector({ baselines }),
    rules: createRuleDetector(),
  };
}

const pct = (n: number, d: number): string => `${((100 * n) / d).toFixed(1)}%`;

describe('evaluation on the example plugins and rogue variants', () => {
  it('the combined detectors flag every rogue variant and no normal run', async () => {
    const d = detectors();
    const set = createDetectorSet([d.sequence, d.frequency, d.rules]);
    const all = await evaluate(set);
    const lines = [`combined: detection ${all.detected}/${all.attacks} = ${pct(all.detected, all.attacks)}, false positives ${all.falsePositives}/${all.normal} = ${pct(all.falsePositives, all.normal)}`];
    for (const [name, det] of Object.entries(detectors())) {
      const t = await evaluate(det);
      lines.push(`${name.padEnd(9)} alone: detection ${pct(t.detected, t.attacks)}, false positives ${pct(t.falsePositives, t.normal)}${t.missed.length > 0 ? `; misses e.g. ${t.missed.slice(0, 3).join(', ')}` : ''}`);
    }
    // The blind spot: an exfiltrating PUT to a host the plugin normally uses, in the normal call shape.
    let mimicry = 0;
    for (let i = 0; i < 20; i++) if ((await set.score(mimicryRun(i), KEYS.fetcher)).score >= THRESHOLD) mimicry++;
    lines.push(`mimicry (known blind spot): ${mimicry}/20 flagged`);
    // How much normal behaviour the baselines need: false positives after fewer training runs.
    for (const n of [2, 5, 10, 20]) {
      const s = detectors();
      const t = await evaluate(createDetectorSet([s.sequence, s.frequency, s.rules]), n);
      lines.push(`trained on ${String(n).padStart(2)} runs per plugin: detection ${pct(t.detected, t.attacks)}, false positives ${t.falsePositives}/${t.normal} = ${pct(t.falsePositives, t.normal)}`);
    }
    console.log(lines.join('\n'));
    expect(all.missed).toEqual([]);
    expect(all.detected).toBe(PLUGINS.length * ATTACKS.length * PER_ATTACK);
    expect(all.falsePositives).toBe(0);
  });
});
