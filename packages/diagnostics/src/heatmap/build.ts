import { ForgeError } from '@forgeone/common';
import type { AnomalyFlag, FlagSeverity, TraceCallRecord } from '@forgeone/observer';
import { runIntegrity } from '../anomaly/analyze.js';
import { SEVERITY_WEIGHT, checkRecords, isRefused } from '../anomaly/types.js';
import type { RunRecords } from '../anomaly/types.js';

/** The heatmap format name. */
export const HEATMAP_FORMAT = 'forgeone.heatmap/v1';

/** The column of flags that name no record (or a record the run does not hold). */
export const RUN_COLUMN = '(run)';

/** Refusals at which a cell's denial heat reaches 0.5. */
export const DENIAL_HALF = 2;

/** One run, as the heatmap sees it. */
export interface HeatmapRun {
  /** The identity subject that ran it (a row of the identity × syscall grid). */
  readonly subject: string;
  /** The container (a row of the container × time grid). */
  readonly containerId: string;
  /** Its call records. */
  readonly records: RunRecords;
  /** Its anomaly flags (detectors', the trace summary's); a flag's `seq` places it in a cell. */
  readonly flags?: readonly AnomalyFlag[];
}

/** One cell: what happened in one row × column. */
export interface HeatmapCell {
  /** Row label. */
  readonly row: string;
  /** Column label. */
  readonly col: string;
  /** Calls. */
  readonly calls: number;
  /** Refused calls (denied, quarantining, suspended, terminated). */
  readonly denials: number;
  /** Anomaly flags placed here. */
  readonly anomalies: number;
  /** The strongest flag's severity, or null. */
  readonly severity: FlagSeverity | null;
  /** Heat in [0, 1] (see {@link cellScore}). */
  readonly score: number;
}

/** A grid of cells; only cells where something happened are listed. */
export interface HeatmapGrid {
  /** What the rows are, e.g. `identity`. */
  readonly rowLabel: string;
  /** What the columns are, e.g. `syscall`. */
  readonly colLabel: string;
  /** Row labels, sorted. */
  readonly rows: readonly string[];
  /** Column labels, in order (sorted, or by time). */
  readonly cols: readonly string[];
  /** Non-empty cells, row by row. */
  readonly cells: readonly HeatmapCell[];
}

/** The container × time grid, with its time buckets. */
export interface TimeGrid extends HeatmapGrid {
  /** Bucket width, ms. */
  readonly bucketMs: number;
  /** Start of each column's bucket, ms since the epoch (same order as `cols`). */
  readonly colStarts: readonly number[];
}

/** A container's integrity, from its denials and anomalies. */
export interface ContainerIntegrity {
  /** The container. */
  readonly containerId: string;
  /** Who ran it. */
  readonly subject: string;
  /** Integrity in [0, 1], as the observer computes it. */
  readonly integrity: number;
  /** Refused calls. */
  readonly denials: number;
  /** Anomaly flags. */
  readonly anomalies: number;
}

/** A heatmap of anomaly scores and denials (plain JSON data). */
export interface Heatmap {
  /** `forgeone.heatmap/v1`. */
  readonly format: typeof HEATMAP_FORMAT;
  /** Runs and records it was built from. */
  readonly totals: { readonly runs: number; readonly records: number; readonly denials: number; readonly anomalies: number };
  /** Identity × syscall. */
  readonly identitySyscall: HeatmapGrid;
  /** Container × time. */
  readonly containerTime: TimeGrid;
  /** Per container (all its runs together), lowest integrity first. */
  readonly integrity: readonly ContainerIntegrity[];
}

/** Options of {@link buildHeatmap}. */
export interface HeatmapOptions {
  /** Time bucket width in ms (default: chosen from the time span, about 24 buckets). */
  readonly bucketMs?: number;
}

/**
 * The heat of a cell: `1 − (1 − d / (d + 2)) · (1 − w)`, where `d` is its refused calls and `w` the weight of
 * its strongest flag (low 0.3, medium 0.6, high 1; 0 without flags). One refusal gives 0.33, two 0.5, eight
 * 0.8; a high flag gives 1.
 * @param denials - refused calls
 * @param severity - the strongest flag's severity, or null
 * @returns the heat in [0, 1]
 */
export function cellScore(denials: number, severity: FlagSeverity | null): number {
  const d = denials / (denials + DENIAL_HALF);
  const w = severity === null ? 0 : SEVERITY_WEIGHT[severity];
  return 1 - (1 - d) * (1 - w);
}

const NICE_BUCKETS = [1000, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000];

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const ORDER: Readonly<Record<FlagSeverity, number>> = { low: 0, medium: 1, high: 2 };

class Acc {
  calls = 0;
  denials = 0;
  anomalies = 0;
  severity: FlagSeverity | null = null;

  flag(f: AnomalyFlag): void {
    this.anomalies++;
    if (this.severity === null || ORDER[f.severity] > ORDER[this.severity]) this.severity = f.severity;
  }
}

function grid(rowLabel: string, colLabel: string, cells: Map<string, Map<string, Acc>>, cols: readonly string[]): HeatmapGrid {
  const rows = [...cells.keys()].sort(byName);
  const out: HeatmapCell[] = [];
  for (const row of rows) {
    const m = cells.get(row)!;
    for (const col of cols) {
      const a = m.get(col);
      if (a === undefined) continue;
      out.push({ row, col, calls: a.calls, denials: a.denials, anomalies: a.anomalies, severity: a.severity, score: Math.round(cellScore(a.denials, a.severity) * 1000) / 1000 });
    }
  }
  return { rowLabel, colLabel, rows, cols, cells: out };
}

function at(cells: Map<string, Map<string, Acc>>, row: string, col: string): Acc {
  let m = cells.get(row);
  if (m === undefined) cells.set(row, (m = new Map()));
  let a = m.get(col);
  if (a === undefined) m.set(col, (a = new Acc()));
  return a;
}

function checkRun(run: HeatmapRun, i: number): void {
  if (typeof run !== 'object' || run === null) throw new ForgeError('INVALID_ARGUMENT', `runs[${i}] must be an object`, { details: { field: `runs[${i}]` } });
  for (const field of ['subject', 'containerId'] as const) {
    if (typeof run[field] !== 'string' || run[field].length === 0) throw new ForgeError('INVALID_ARGUMENT', `runs[${i}].${field} must be a non-empty string`, { details: { field: `runs[${i}].${field}` } });
  }
  checkRecords(run.records, `runs[${i}].records`);
  if (run.flags !== undefined && (!Array.isArray(run.flags) || !run.flags.every((f) => typeof f?.name === 'string' && f.severity in ORDER))) {
    throw new ForgeError('INVALID_ARGUMENT', `runs[${i}].flags must be anomaly flags { name, severity, detail?, seq? }`, { details: { field: `runs[${i}].flags` } });
  }
}

/**
 * Build a heatmap of denials and anomalies over identity × syscall and container × time. Each record adds a
 * call (and a denial when refused) to its cell; each flag is placed at the record its `seq` names (flags
 * without one go to the `(run)` column and the run's first bucket). Deterministic: the same runs give the
 * same JSON.
 * @param runs - the runs (e.g. from exported traces, with detector flags)
 * @param options - the time bucket width
 * @returns the heatmap
 * @throws ForgeError `INVALID_ARGUMENT` naming the bad run or field
 * @example
 * ```ts
 * const heatmap = buildHeatmap([{ subject: 'plugin:rogue', containerId: 'ctr-1', records, flags }]);
 * const hot = heatmap.identitySyscall.cells.filter((c) => c.score >= 0.5);
 * ```
 */
export function buildHeatmap(runs: readonly HeatmapRun[], options: HeatmapOptions = {}): Heatmap {
  if (!Array.isArray(runs)) throw new ForgeError('INVALID_ARGUMENT', 'runs must be an array', { details: { field: 'runs' } });
  runs.forEach(checkRun);
  let lo = Infinity;
  let hi = -Infinity;
  for (const run of runs) {
    for (const r of run.records) {
      if (r.start < lo) lo = r.start;
      if (r.start > hi) hi = r.start;
    }
  }
  if (lo === Infinity) lo = hi = 0;
  let bucketMs = options.bucketMs;
  if (bucketMs === undefined) bucketMs = NICE_BUCKETS.find((b) => (hi - lo) / b <= 24) ?? NICE_BUCKETS[NICE_BUCKETS.length - 1]!;
  else if (!Number.isSafeInteger(bucketMs) || bucketMs < 1) throw new ForgeError('INVALID_ARGUMENT', 'bucketMs must be a positive integer', { details: { field: 'bucketMs' } });
  const origin = Math.floor(lo / bucketMs) * bucketMs;
  const bucket = (t: number): number => origin + Math.floor((t - origin) / bucketMs) * bucketMs;

  const bySyscall = new Map<string, Map<string, Acc>>();
  const byTime = new Map<string, Map<string, Acc>>();
  const syscalls = new Set<string>();
  const buckets = new Set<number>();
  const integrity: ContainerIntegrity[] = [];
  type PerContainer = { subject: string; records: TraceCallRecord[]; flags: AnomalyFlag[]; denials: number };
  const perContainer = new Map<string, PerContainer>();
  let records = 0;
  let denials = 0;
  let anomalies = 0;
  const label = (b: number): string => new Date(b).toISOString();

  for (const run of runs) {
    const bySeq = new Map<number, (typeof run.records)[number]>();
    let runDenials = 0;
    for (const r of run.records) {
      bySeq.set(r.seq, r);
      const refused = isRefused(r);
      syscalls.add(r.syscall);
      const b = bucket(r.start);
      buckets.add(b);
      const a = at(bySyscall, run.subject, r.syscall);
      const t = at(byTime, run.containerId, label(b));
      a.calls++;
      t.calls++;
      if (refused) {
        a.denials++;
        t.denials++;
        runDenials++;
      }
    }
    records += run.records.length;
    denials += runDenials;
    const flags = run.flags ?? [];
    for (const f of flags) {
      const r = f.seq === undefined ? undefined : bySeq.get(f.seq);
      const col = r === undefined ? RUN_COLUMN : r.syscall;
      if (r === undefined) syscalls.add(RUN_COLUMN);
      const b = r === undefined ? (run.records.length === 0 ? origin : bucket(run.records[0]!.start)) : bucket(r.start);
      buckets.add(b);
      at(bySyscall, run.subject, col).flag(f);
      at(byTime, run.containerId, label(b)).flag(f);
      anomalies++;
    }
    const c: PerContainer = perContainer.get(run.containerId) ?? { subject: run.subject, records: [], flags: [], denials: 0 };
    c.records.push(...run.records);
    c.flags.push(...flags);
    c.denials += runDenials;
    perContainer.set(run.containerId, c);
  }
  for (const [containerId, c] of perContainer) {
    integrity.push({ containerId, subject: c.subject, integrity: runIntegrity(c.records, c.flags), denials: c.denials, anomalies: c.flags.length });
  }
  const cols = [...syscalls].sort((a, b) => (a === RUN_COLUMN ? 1 : b === RUN_COLUMN ? -1 : byName(a, b)));
  const starts = [...buckets].sort((a, b) => a - b);
  integrity.sort((a, b) => a.integrity - b.integrity || byName(a.containerId, b.containerId));
  return {
    format: HEATMAP_FORMAT,
    totals: { runs: runs.length, records, denials, anomalies },
    identitySyscall: grid('identity', 'syscall', bySyscall, cols),
    containerTime: { ...grid('container', 'time', byTime, starts.map(label)), bucketMs, colStarts: starts },
    integrity,
  };
}
