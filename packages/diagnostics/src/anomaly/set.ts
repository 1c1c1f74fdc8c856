import { ForgeError } from '@forgeone/common';
import type { AnomalyFlag } from '@forgeone/observer';
import { checkBaselineKey, checkRecords, clamp01 } from './types.js';
import type { AnomalyDetector, AnomalyResult, BaselineKey, RunObserver, RunRecords } from './types.js';

/** What a detector set says about a run: the combined result and each detector's own. */
export interface DetectorSetResult extends AnomalyResult {
  /** Each detector's result, in the set's order. */
  readonly parts: readonly AnomalyResult[];
}

/** A set of detectors that is itself a detector, and tells its parts apart. */
export interface DetectorSet extends AnomalyDetector {
  /** The detectors, in order. */
  readonly detectors: readonly AnomalyDetector[];
  /**
   * Score a run with every detector.
   * @param records - the run
   * @param key - the package
   * @returns the combined result with the parts
   */
  score(records: RunRecords, key: BaselineKey): Promise<DetectorSetResult>;
}

/** Options of {@link createDetectorSet}. */
export interface DetectorSetOptions {
  /**
   * How scores combine: `max` (default; the most alarmed detector decides) or `weighted` (the weighted mean,
   * weights by detector name, default 1).
   */
  readonly combine?: 'max' | 'weighted';
  /** Weights for `weighted`, by detector name. */
  readonly weights?: Readonly<Record<string, number>>;
  /** The set's name (default `set`). */
  readonly name?: string;
}

/**
 * Combine detectors: learning goes to each, scores combine (max or weighted mean), flags are concatenated in
 * detector order. The set is itself an {@link AnomalyDetector}, so sets nest.
 * @param detectors - the detectors (distinct names)
 * @param options - how to combine
 * @returns the set
 * @throws ForgeError `INVALID_ARGUMENT` for an empty list, duplicate names or a bad weight
 * @example
 * ```ts
 * const detector = createDetectorSet([createSequenceDetector({ baselines }), createFrequencyDetector({ baselines }), createRuleDetector()]);
 * ```
 */
export function createDetectorSet(detectors: readonly AnomalyDetector[], options: DetectorSetOptions = {}): DetectorSet {
  if (!Array.isArray(detectors) || detectors.length === 0) throw new ForgeError('INVALID_ARGUMENT', 'a detector set needs at least one detector', { details: { field: 'detectors' } });
  const names = new Set<string>();
  detectors.forEach((d, i) => {
    if (typeof d?.name !== 'string' || typeof d.score !== 'function' || typeof d.learn !== 'function' || typeof d.start !== 'function') {
      throw new ForgeError('INVALID_ARGUMENT', `detectors[${i}] is not an anomaly detector`, { details: { field: `detectors[${i}]` } });
    }
    if (names.has(d.name)) throw new ForgeError('INVALID_ARGUMENT', `two detectors are named ${d.name}`, { details: { field: `detectors[${i}].name` } });
    names.add(d.name);
  });
  const combine = options.combine ?? 'max';
  const weights = detectors.map((d) => options.weights?.[d.name] ?? 1);
  weights.forEach((w, i) => {
    if (!Number.isFinite(w) || w < 0) throw new ForgeError('INVALID_ARGUMENT', `the weight of ${detectors[i]!.name} must be a finite number >= 0`, { details: { field: `weights.${detectors[i]!.name}` } });
  });
  const name = options.name ?? 'set';
  const list = [...detectors];

  const merge = (parts: AnomalyResult[]): DetectorSetResult => {
    let score = 0;
    if (combine === 'max') score = parts.reduce((m, p) => Math.max(m, p.score), 0);
    else {
      const total = weights.reduce((a, b) => a + b, 0);
      score = total === 0 ? 0 : parts.reduce((a, p, i) => a + p.score * weights[i]!, 0) / total;
    }
    const flags: AnomalyFlag[] = parts.flatMap((p) => p.flags);
    return { detector: name, score: clamp01(score), flags, baseline: parts.some((p) => p.baseline), parts };
  };

  return {
    name,
    detectors: list,
    async learn(runs, key) {
      checkBaselineKey(key);
      for (const d of list) await d.learn(runs, key);
    },
    async score(records, key) {
      checkBaselineKey(key);
      checkRecords(records);
      const parts: AnomalyResult[] = [];
      for (const d of list) parts.push(await d.score(records, key));
      return merge(parts);
    },
    async start(key): Promise<RunObserver> {
      checkBaselineKey(key);
      const observers = await Promise.all(list.map((d) => d.start(key)));
      let finished: DetectorSetResult | null = null;
      return {
        observe(record) {
          let out: AnomalyFlag[] | null = null;
          for (const o of observers) {
            const f = o.observe(record);
            if (f !== null) (out ??= []).push(...f);
          }
          return out;
        },
        finish() {
          finished ??= merge(observers.map((o) => o.finish()));
          return finished;
        },
      };
    },
  };
}
