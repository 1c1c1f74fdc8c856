import { ForgeError } from '@forgeone/common';
import type { AnomalyFlag, TraceCallRecord } from '@forgeone/observer';
import { z } from 'zod';
import { BaselineCache } from './baselines.js';
import type { BaselineStore } from './baselines.js';
import { checkBaselineKey, checkRecord, checkRecords, clamp01, flag, isRefused, severityOf } from './types.js';
import type { AnomalyDetector, AnomalyResult, RunObserver, RunRecords } from './types.js';

/** Options of {@link createFrequencyDetector}. */
export interface FrequencyDetectorOptions {
  /** Where baselines are kept. */
  readonly baselines: BaselineStore;
  /** The detector name (default `frequency`); also its baseline name. */
  readonly name?: string;
  /** How many standard deviations above the learned mean a count must be to be flagged (default 3). */
  readonly zThreshold?: number;
  /** The width of the rate window in ms: rate is the most calls of one syscall within it (default 1000). */
  readonly rateWindowMs?: number;
  /** How many times the learned peak rate a run's peak must reach to be flagged (default 2). */
  readonly rateFactor?: number;
  /** And by how many calls per window at least (default 5), so 1 → 2 is not a burst. */
  readonly minRateExcess?: number;
  /** Most distinct targets learned per syscall (default 64); beyond that any target of it is normal. */
  readonly maxTargets?: number;
  /** Whether unseen targets are flagged (default true). */
  readonly targets?: boolean;
}

const Stat = z.strictObject({
  sum: z.number().min(0),
  sumSq: z.number().min(0),
  max: z.number().int().min(0),
  maxRate: z.number().int().min(0),
  runs: z.number().int().min(0),
  targets: z.array(z.string()).nullable(),
});

const FrequencyBaselineSchema = z.strictObject({
  runs: z.number().int().min(0),
  rateWindowMs: z.number().int().min(1),
  syscalls: z.record(z.string(), Stat),
});

type FrequencyBaseline = z.infer<typeof FrequencyBaselineSchema>;
type SyscallStat = z.infer<typeof Stat>;

function numOption(value: number | undefined, dflt: number, min: number, max: number, field: string, integer = false): number {
  const v = value ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isSafeInteger(v))) {
    throw new ForgeError('INVALID_ARGUMENT', `${field} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`, { details: { field } });
  }
  return v;
}

/**
 * The coarse target of a call, so that normal variety (another key under the same prefix, another subdomain)
 * stays normal: the first two path segments, a kv key's first segment, the last two labels of a host with
 * its port, or the detail text (a log level, a method and scheme).
 * @param r - the record
 * @returns the target, or null when the call has none
 */
export function coarseTarget(r: TraceCallRecord): string | null {
  const a = r.args;
  if (r.syscall.startsWith('forgeone:kv/')) {
    const key = a.detail ?? (a.path === undefined ? undefined : a.path.slice(1));
    if (key === undefined) return null;
    return a.path === undefined ? `key ${key}` : `key ${key.split('/')[0] ?? ''}/…`;
  }
  if (a.path !== undefined) return a.path.split('/').slice(0, 3).join('/');
  if (a.host !== undefined) {
    const ip = /^[0-9.]+$/.test(a.host) || a.host.includes(':');
    const host = ip ? a.host : a.host.split('.').slice(-2).join('.');
    return `${host}:${a.port ?? ''}`;
  }
  if (a.detail !== undefined) return a.detail;
  return null;
}

/** Peak number of events within any window of `width` ms, over sorted times (two pointers). */
function peak(times: number[], width: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! >= width) lo++;
    if (hi - lo + 1 > best) best = hi - lo + 1;
  }
  return best;
}

interface RunStat {
  count: number;
  refused: number;
  firstSeq: number;
  times: number[];
  lo: number;
  peak: number;
  targets: Map<string, { seq: number; refused: boolean }>;
  countSeq?: number;
  rateSeq?: number;
}

/** A score for an excess `ratio` over a `threshold` ratio. */
function excessScore(ratio: number, threshold: number): number {
  // 0.4 at the threshold, rising towards 1 as the excess grows: 0.7 at twice the threshold, 0.94 at ten times.
  return clamp01(0.4 + 0.6 * (1 - threshold / ratio));
}

/**
 * The frequency and rate detector: learns, per package and syscall, the distribution of calls per run (mean,
 * standard deviation, maximum), the peak rate (most calls within `rateWindowMs`), and the coarse targets
 * (path prefixes, hosts, key prefixes) it uses. A run is flagged for:
 * - `new-syscall`: a syscall no normal run made (medium, score 0.6; high, 0.85, when it was refused);
 * - `call-count`: more calls than any normal run and `zThreshold` standard deviations above the mean (the
 *   deviation is floored at 1 call and a quarter of the mean); score from 0.4 at the threshold towards 1;
 * - `call-rate`: a peak rate `rateFactor` times the learned peak and `minRateExcess` calls above it;
 * - `new-target`: a target no normal run used (low, 0.3; medium, 0.6, when refused) — one flag per syscall.
 * The run's score is the highest of its findings.
 * @param options - baselines, thresholds
 * @returns the detector
 * @throws ForgeError `INVALID_ARGUMENT` for an option out of range
 * @example
 * ```ts
 * const frequency = createFrequencyDetector({ baselines });
 * await frequency.learn(normalRuns, key);
 * const result = await frequency.score(run, key);
 * ```
 */
export function createFrequencyDetector(options: FrequencyDetectorOptions): AnomalyDetector {
  const name = options.name ?? 'frequency';
  const zThreshold = numOption(options.zThreshold, 3, 0.5, 1000, 'zThreshold');
  const rateWindowMs = numOption(options.rateWindowMs, 1000, 1, 86_400_000, 'rateWindowMs', true);
  const rateFactor = numOption(options.rateFactor, 2, 1, 1000, 'rateFactor');
  const minRateExcess = numOption(options.minRateExcess, 5, 0, 1_000_000, 'minRateExcess', true);
  const maxTargets = numOption(options.maxTargets, 64, 0, 100_000, 'maxTargets', true);
  const watchTargets = options.targets ?? true;
  const cache = new BaselineCache<FrequencyBaseline>(options.baselines, name, FrequencyBaselineSchema);

  const observer = (baseline: FrequencyBaseline | undefined): RunObserver => {
    const stats = new Map<string, RunStat>();
    let finished: AnomalyResult | null = null;

    const countOf = (s: SyscallStat, count: number): { z: number; over: boolean } => {
      const n = baseline!.runs;
      const mean = s.sum / n;
      const sd = Math.sqrt(Math.max(0, s.sumSq / n - mean * mean));
      const z = (count - mean) / Math.max(sd, 1, 0.25 * mean);
      return { z, over: count > s.max && z >= zThreshold };
    };
    const rateOver = (s: SyscallStat, p: number): boolean => p >= rateFactor * s.maxRate && p - s.maxRate >= minRateExcess && p > s.maxRate;

    return {
      observe(record) {
        if (finished !== null) throw new ForgeError('INVALID_ARGUMENT', 'this run is finished');
        checkRecord(record);
        if (baseline === undefined) return null;
        let st = stats.get(record.syscall);
        const out: AnomalyFlag[] = [];
        const learned = baseline.syscalls[record.syscall];
        const refused = isRefused(record);
        if (st === undefined) {
          st = { count: 0, refused: 0, firstSeq: record.seq, times: [], lo: 0, peak: 0, targets: new Map() };
          stats.set(record.syscall, st);
          if (learned === undefined) out.push(flag('new-syscall', refused ? 'high' : 'medium', `${record.syscall}: no normal run made this call`, record.seq));
        }
        st.count++;
        if (refused) st.refused++;
        // Rate: the window of calls within rateWindowMs ending at this one (records arrive in order).
        st.times.push(record.start);
        while (record.start - st.times[st.lo]! >= rateWindowMs) st.lo++;
        if (st.lo > 1024) {
          st.times.splice(0, st.lo);
          st.lo = 0;
        }
        st.peak = Math.max(st.peak, st.times.length - st.lo);
        if (learned !== undefined) {
          if (st.countSeq === undefined && countOf(learned, st.count).over) {
            st.countSeq = record.seq;
            out.push(flag('call-count', 'medium', `${record.syscall}: ${st.count} calls, more than any normal run (${learned.max})`, record.seq));
          }
          if (st.rateSeq === undefined && rateOver(learned, st.peak)) {
            st.rateSeq = record.seq;
            out.push(flag('call-rate', 'medium', `${record.syscall}: ${st.peak} calls within ${rateWindowMs} ms, normal peak ${learned.maxRate}`, record.seq));
          }
          if (watchTargets && learned.targets !== null) {
            const t = coarseTarget(record);
            if (t !== null && !learned.targets.includes(t) && !st.targets.has(t)) {
              st.targets.set(t, { seq: record.seq, refused });
              if (st.targets.size === 1) out.push(flag('new-target', refused ? 'medium' : 'low', `${record.syscall}: ${t} was never used in a normal run`, record.seq));
            }
          }
        }
        return out.length === 0 ? null : out;
      },
      finish() {
        if (finished !== null) return finished;
        if (baseline === undefined) return (finished = { detector: name, score: 0, flags: [], baseline: false });
        const found: { score: number; flag: AnomalyFlag }[] = [];
        for (const [syscall, st] of stats) {
          const learned = baseline.syscalls[syscall];
          if (learned === undefined) {
            const score = st.refused > 0 ? 0.85 : 0.6;
            found.push({ score, flag: flag('new-syscall', severityOf(score), `${syscall}: ${st.count} call(s)${st.refused > 0 ? `, ${st.refused} refused` : ''}; no normal run made this call`, st.firstSeq) });
            continue;
          }
          const c = countOf(learned, st.count);
          if (c.over) {
            const score = excessScore(c.z, zThreshold);
            const mean = learned.sum / baseline.runs;
            found.push({
              score,
              flag: flag('call-count', severityOf(score), `${syscall}: ${st.count} calls; normal runs make ${mean.toFixed(1)} on average, at most ${learned.max} (z = ${c.z.toFixed(1)})`, st.countSeq),
            });
          }
          if (rateOver(learned, st.peak)) {
            const score = excessScore(st.peak / Math.max(1, learned.maxRate), rateFactor);
            found.push({ score, flag: flag('call-rate', severityOf(score), `${syscall}: ${st.peak} calls within ${rateWindowMs} ms; the normal peak is ${learned.maxRate}`, st.rateSeq) });
          }
          if (st.targets.size > 0) {
            const refused = [...st.targets.values()].some((t) => t.refused);
            const score = refused ? 0.6 : 0.3;
            const names = [...st.targets.keys()];
            const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} in all)` : '');
            found.push({ score, flag: flag('new-target', severityOf(score), `${syscall}: never used in a normal run: ${shown}`, [...st.targets.values()][0]!.seq) });
          }
        }
        found.sort((a, b) => (a.flag.seq ?? -1) - (b.flag.seq ?? -1));
        const score = found.reduce((m, f) => Math.max(m, f.score), 0);
        return (finished = { detector: name, score, flags: found.map((f) => f.flag), baseline: true });
      },
    };
  };

  return {
    name,
    async learn(runs, key) {
      checkBaselineKey(key);
      if (!Array.isArray(runs)) throw new ForgeError('INVALID_ARGUMENT', 'runs must be an array of runs', { details: { field: 'runs' } });
      runs.forEach((r, i) => checkRecords(r, `runs[${i}]`));
      await cache.update(key, (old) => {
        if (old !== undefined && old.rateWindowMs !== rateWindowMs) {
          throw new ForgeError('INVALID_ARGUMENT', `the ${name} baseline of ${key.packageName}@${key.packageVersion} was learned with a ${old.rateWindowMs} ms rate window, not ${rateWindowMs}`, {
            details: { field: 'rateWindowMs' },
          });
        }
        const b: FrequencyBaseline = old === undefined ? { runs: 0, rateWindowMs, syscalls: {} } : structuredClone(old);
        for (const run of runs) {
          const per = new Map<string, { count: number; times: number[]; targets: Set<string> }>();
          for (const r of run) {
            let p = per.get(r.syscall);
            if (p === undefined) per.set(r.syscall, (p = { count: 0, times: [], targets: new Set() }));
            p.count++;
            p.times.push(r.start);
            const t = coarseTarget(r);
            if (t !== null) p.targets.add(t);
          }
          b.runs++;
          for (const [syscall, p] of per) {
            const s = (b.syscalls[syscall] ??= { sum: 0, sumSq: 0, max: 0, maxRate: 0, runs: 0, targets: [] });
            s.sum += p.count;
            s.sumSq += p.count * p.count;
            s.max = Math.max(s.max, p.count);
            s.maxRate = Math.max(s.maxRate, peak(p.times.sort((x, y) => x - y), rateWindowMs));
            s.runs++;
            if (s.targets !== null) {
              const all = new Set([...s.targets, ...p.targets]);
              s.targets = all.size > maxTargets ? null : [...all].sort();
            }
          }
        }
        return b;
      });
    },
    async score(records: RunRecords, key) {
      checkBaselineKey(key);
      checkRecords(records);
      const o = observer(await cache.get(key));
      for (const r of records) o.observe(r);
      return o.finish();
    },
    async start(key) {
      checkBaselineKey(key);
      return observer(await cache.get(key));
    },
  };
}
