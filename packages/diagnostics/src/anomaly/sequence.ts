import { ForgeError } from '@forgeone/common';
import type { AnomalyFlag, TraceCallRecord } from '@forgeone/observer';
import { z } from 'zod';
import { BaselineCache } from './baselines.js';
import type { BaselineStore } from './baselines.js';
import { checkBaselineKey, checkRecord, checkRecords, clamp01, flag, isRefused, severityOf } from './types.js';
import type { AnomalyDetector, AnomalyResult, BaselineKey, RunObserver, RunRecords } from './types.js';

/** Options of {@link createSequenceDetector}. */
export interface SequenceDetectorOptions {
  /** Where baselines are kept. */
  readonly baselines: BaselineStore;
  /** The detector name (default `sequence`); also its baseline name. */
  readonly name?: string;
  /** Window length k: how many consecutive calls make one sequence (2–16, default 4). */
  readonly window?: number;
  /** Whether a refused call is a different symbol from a performed one (default true). */
  readonly withVerdict?: boolean;
  /** Locality frame: the number of recent windows in which unseen ones are counted (default 20). */
  readonly frame?: number;
  /** Most distinct windows a baseline keeps (default 10,000); beyond that, new windows are not learned. */
  readonly maxWindows?: number;
}

const START = '^';
const END = '$';
const SEP = '\u0001';

const SequenceBaselineSchema = z.strictObject({
  window: z.number().int().min(2).max(16),
  withVerdict: z.boolean(),
  runs: z.number().int().min(0),
  windows: z.array(z.string()),
  saturated: z.boolean(),
});

type SequenceBaseline = z.infer<typeof SequenceBaselineSchema>;

function intOption(value: number | undefined, dflt: number, min: number, max: number, field: string): number {
  const v = value ?? dflt;
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new ForgeError('INVALID_ARGUMENT', `${field} must be an integer in [${min}, ${max}]`, { details: { field } });
  return v;
}

function show(window: readonly string[]): string {
  return window.map((t) => (t === START ? '(start)' : t === END ? '(end)' : t.endsWith('!') ? `${t.slice(0, -1)} (refused)` : t)).join(' → ');
}

/**
 * Slides a window of k symbols over a run (padded with start and end markers) and looks each window up in a
 * set. Used for learning (collect) and scoring (check) alike, so both see exactly the same windows.
 */
class WindowScanner {
  readonly #k: number;
  readonly #withVerdict: boolean;
  readonly #buf: string[] = [START];
  readonly #seqs: number[] = [-1];
  count = 0;

  constructor(k: number, withVerdict: boolean) {
    this.#k = k;
    this.#withVerdict = withVerdict;
  }

  /** Push a record; returns the completed window (and the seq of its last record) or null. */
  push(r: TraceCallRecord): { key: string; window: string[]; seq: number } | null {
    this.#buf.push(this.#withVerdict && isRefused(r) ? `${r.syscall}!` : r.syscall);
    this.#seqs.push(r.seq);
    if (this.#buf.length > this.#k) {
      this.#buf.shift();
      this.#seqs.shift();
    }
    if (this.#buf.length < this.#k) return null;
    this.count++;
    return { key: this.#buf.join(SEP), window: [...this.#buf], seq: r.seq };
  }

  /** End the run: the window ending with the end marker (or the whole run when shorter than k). */
  end(): { key: string; window: string[]; seq: number | undefined } {
    this.#buf.push(END);
    if (this.#buf.length > this.#k) {
      this.#buf.shift();
      this.#seqs.shift();
    }
    this.count++;
    const last = this.#seqs[this.#seqs.length - 1];
    return { key: this.#buf.join(SEP), window: [...this.#buf], seq: last === undefined || last < 0 ? undefined : last };
  }
}

/**
 * The sequence detector, after Forrest et al., "A Sense of Self for Unix Processes" (1996): a package's normal
 * runs define a set of short call sequences (windows of k consecutive syscall names, refused calls marked,
 * runs padded with start and end markers); a run is scored by how many of its windows were never seen.
 *
 * Score: the larger of the mismatch rate (unseen windows / windows) and the densest locality frame (most
 * unseen windows among `frame` consecutive ones, / `frame`), so a short burst in a long run still counts.
 * One flag `unseen-call-sequence` names the first unseen window and its record; its severity follows the
 * score (high from 0.8, medium from 0.5). While watching a run, `observe` raises the flag at the first unseen
 * window and again whenever its severity rises.
 * @param options - baselines, window length, verdict marking, frame, cap
 * @returns the detector
 * @throws ForgeError `INVALID_ARGUMENT` for an option out of range
 * @example
 * ```ts
 * const sequence = createSequenceDetector({ baselines, window: 4 });
 * await sequence.learn(normalRuns, { packageName: 'hello', packageVersion: '1.0.0' });
 * const { score, flags } = await sequence.score(run, { packageName: 'hello', packageVersion: '1.0.0' });
 * ```
 */
export function createSequenceDetector(options: SequenceDetectorOptions): AnomalyDetector {
  const name = options.name ?? 'sequence';
  const k = intOption(options.window, 4, 2, 16, 'window');
  const withVerdict = options.withVerdict ?? true;
  const frame = intOption(options.frame, 20, 1, 10_000, 'frame');
  const maxWindows = intOption(options.maxWindows, 10_000, 1, 1_000_000, 'maxWindows');
  const cache = new BaselineCache<SequenceBaseline>(options.baselines, name, SequenceBaselineSchema);

  const compatible = (b: SequenceBaseline, key: BaselineKey): SequenceBaseline => {
    if (b.window !== k || b.withVerdict !== withVerdict) {
      throw new ForgeError(
        'INVALID_ARGUMENT',
        `the ${name} baseline of ${key.packageName}@${key.packageVersion} was learned with window ${b.window}${b.withVerdict ? ' and verdicts' : ''}; this detector uses window ${k}${withVerdict ? ' and verdicts' : ''}`,
        { details: { field: 'window', learned: b.window, configured: k } },
      );
    }
    return b;
  };

  const observer = (baseline: SequenceBaseline | undefined): RunObserver => {
    const known = new Set(baseline?.windows ?? []);
    const scanner = new WindowScanner(k, withVerdict);
    const recent: boolean[] = [];
    let inFrame = 0;
    let densest = 0;
    let unseen = 0;
    let first: { window: string[]; seq: number | undefined } | null = null;
    let raised: AnomalyFlag['severity'] | null = null;

    const current = (): number => clamp01(Math.max(scanner.count === 0 ? 0 : unseen / scanner.count, densest / frame));
    const detail = (): string =>
      `${unseen} of ${scanner.count} call windows (k=${k}) never seen in ${baseline?.runs ?? 0} normal runs; densest ${densest} in ${frame}; first: ${show(first?.window ?? [])}`;
    const account = (w: { key: string; window: string[]; seq: number | undefined }): AnomalyFlag[] | null => {
      const miss = !known.has(w.key);
      recent.push(miss);
      if (miss) inFrame++;
      if (recent.length > frame && recent.shift() === true) inFrame--;
      if (inFrame > densest) densest = inFrame;
      if (!miss) return null;
      unseen++;
      first ??= { window: w.window, seq: w.seq };
      const severity = severityOf(current());
      const order = { low: 0, medium: 1, high: 2 } as const;
      if (raised !== null && order[severity] <= order[raised]) return null;
      raised = severity;
      return [flag('unseen-call-sequence', severity, detail(), first.seq)];
    };
    let finished: AnomalyResult | null = null;
    return {
      observe(record) {
        if (finished !== null) throw new ForgeError('INVALID_ARGUMENT', 'this run is finished');
        checkRecord(record);
        if (baseline === undefined) return null;
        const w = scanner.push(record);
        return w === null ? null : account(w);
      },
      finish() {
        if (finished !== null) return finished;
        if (baseline === undefined) return (finished = { detector: name, score: 0, flags: [], baseline: false });
        account(scanner.end());
        const score = current();
        const flags = unseen === 0 ? [] : [flag('unseen-call-sequence', severityOf(score), detail(), first?.seq)];
        return (finished = { detector: name, score, flags, baseline: true });
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
        const b = old === undefined ? { window: k, withVerdict, runs: 0, windows: [], saturated: false } : compatible(old, key);
        const windows = new Set(b.windows);
        let saturated = b.saturated;
        for (const run of runs) {
          const scanner = new WindowScanner(k, withVerdict);
          const add = (w: { key: string }): void => {
            if (windows.has(w.key)) return;
            if (windows.size >= maxWindows) saturated = true;
            else windows.add(w.key);
          };
          for (const r of run) {
            const w = scanner.push(r);
            if (w !== null) add(w);
          }
          add(scanner.end());
        }
        return { window: k, withVerdict, runs: b.runs + runs.length, windows: [...windows].sort(), saturated };
      });
    },
    async score(records: RunRecords, key) {
      checkBaselineKey(key);
      checkRecords(records);
      const b = await cache.get(key);
      const o = observer(b === undefined ? undefined : compatible(b, key));
      for (const r of records) o.observe(r);
      return o.finish();
    },
    async start(key) {
      checkBaselineKey(key);
      const b = await cache.get(key);
      return observer(b === undefined ? undefined : compatible(b, key));
    },
  };
}
