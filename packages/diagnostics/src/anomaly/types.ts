import { ForgeError } from '@forgeone/common';
import type { AnomalyFlag, FlagSeverity, TraceCallRecord } from '@forgeone/observer';

/** Which package a baseline belongs to: baselines are learned per package name and version. */
export interface BaselineKey {
  /** The package name (as in its manifest). */
  readonly packageName: string;
  /** The package version. */
  readonly packageVersion: string;
}

/** The call records of one run, in sequence order (the gate's records, as the observer defines them). */
export type RunRecords = readonly TraceCallRecord[];

/** What a detector says about one run. */
export interface AnomalyResult {
  /** The detector's name. */
  readonly detector: string;
  /** How abnormal the run is, in [0, 1]: 0 is normal, 1 certainly abnormal. */
  readonly score: number;
  /** The anomalies found (ready for `explainTrace({ flags })` and the trace summary). */
  readonly flags: readonly AnomalyFlag[];
  /** Whether a learned baseline was used (false: the package has no baseline yet, the score says nothing). */
  readonly baseline: boolean;
}

/**
 * A run being watched as it happens: feed records in order, read flags as soon as they are raised.
 * `finish()` gives the same result as {@link AnomalyDetector.score} over the same records.
 */
export interface RunObserver {
  /**
   * Look at the next record.
   * @param record - the next call record of the run
   * @returns the flags this record raised, or null when none (most records)
   */
  observe(record: TraceCallRecord): readonly AnomalyFlag[] | null;
  /**
   * End the run.
   * @returns the detector's result for the whole run
   */
  finish(): AnomalyResult;
}

/**
 * A pluggable anomaly detector. Detectors learn what a package normally does from its runs (baselines are per
 * package name and version, and stored), and score new runs against it. The kernel may watch a run as it goes
 * ({@link AnomalyDetector.start}) or score it after the fact ({@link AnomalyDetector.score}).
 */
export interface AnomalyDetector {
  /** A short stable name, e.g. `sequence`. */
  readonly name: string;
  /**
   * Learn from normal runs of a package: merged into its stored baseline.
   * @param runs - runs known to be normal
   * @param key - the package
   * @returns once the baseline is stored
   * @throws ForgeError `INVALID_ARGUMENT` for a malformed key or record, `STATE_CORRUPT` for a damaged stored baseline
   */
  learn(runs: readonly RunRecords[], key: BaselineKey): Promise<void>;
  /**
   * Score one run against the package's baseline.
   * @param records - the run's records
   * @param key - the package
   * @returns score and flags
   * @throws ForgeError as {@link AnomalyDetector.learn}
   */
  score(records: RunRecords, key: BaselineKey): Promise<AnomalyResult>;
  /**
   * Watch a run as it happens (the baseline is loaded once, then every call is synchronous).
   * @param key - the package
   * @returns an observer for one run
   * @throws ForgeError as {@link AnomalyDetector.learn}
   */
  start(key: BaselineKey): Promise<RunObserver>;
}

/** Longest package name or version in a baseline key. */
export const MAX_KEY_PART = 256;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Check a baseline key.
 * @param key - the key
 * @returns the key
 * @throws ForgeError `INVALID_ARGUMENT` naming the bad field
 */
export function checkBaselineKey(key: BaselineKey): BaselineKey {
  if (typeof key !== 'object' || key === null) throw new ForgeError('INVALID_ARGUMENT', 'a baseline key must be { packageName, packageVersion }', { details: { field: 'key' } });
  for (const field of ['packageName', 'packageVersion'] as const) {
    const v = key[field];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_KEY_PART || CONTROL.test(v)) {
      throw new ForgeError('INVALID_ARGUMENT', `key.${field} must be 1-${MAX_KEY_PART} characters without control characters`, { details: { field: `key.${field}` } });
    }
  }
  return key;
}

/**
 * Check the records of a run: an array of objects with a syscall name, a verdict and a start time.
 * @param records - the run
 * @param field - how to name it in errors
 * @returns the records
 * @throws ForgeError `INVALID_ARGUMENT` naming the first bad record
 */
export function checkRecords(records: RunRecords, field = 'records'): RunRecords {
  if (!Array.isArray(records)) throw new ForgeError('INVALID_ARGUMENT', `${field} must be an array of call records`, { details: { field } });
  for (let i = 0; i < records.length; i++) checkRecord(records[i], `${field}[${i}]`);
  return records;
}

/**
 * Check one record (the fields detectors read).
 * @param r - the record
 * @param field - how to name it in errors
 * @returns the record
 * @throws ForgeError `INVALID_ARGUMENT`
 */
export function checkRecord(r: unknown, field = 'record'): TraceCallRecord {
  const rec = r as TraceCallRecord;
  if (typeof r !== 'object' || r === null) throw new ForgeError('INVALID_ARGUMENT', `${field} must be a call record`, { details: { field } });
  if (typeof rec.syscall !== 'string' || rec.syscall.length === 0) throw new ForgeError('INVALID_ARGUMENT', `${field}.syscall must be a non-empty string`, { details: { field: `${field}.syscall` } });
  if (typeof rec.verdict !== 'string') throw new ForgeError('INVALID_ARGUMENT', `${field}.verdict must be a string`, { details: { field: `${field}.verdict` } });
  if (typeof rec.start !== 'number' || !Number.isFinite(rec.start)) throw new ForgeError('INVALID_ARGUMENT', `${field}.start must be a finite number`, { details: { field: `${field}.start` } });
  if (typeof rec.args !== 'object' || rec.args === null) throw new ForgeError('INVALID_ARGUMENT', `${field}.args must be an object`, { details: { field: `${field}.args` } });
  return rec;
}

/** Verdicts that refused the call. */
export const REFUSED_VERDICTS: ReadonlySet<string> = new Set(['deny', 'quarantine', 'suspended', 'terminated']);

/**
 * Whether a record was refused (denied, quarantining, or refused while quarantined or terminated).
 * @param r - the record
 * @returns true when the call was not performed because of a verdict
 */
export function isRefused(r: Pick<TraceCallRecord, 'verdict'>): boolean {
  return REFUSED_VERDICTS.has(r.verdict);
}

/**
 * The severity that goes with a score: `high` from 0.8, `medium` from 0.5, `low` below.
 * @param score - a score in [0, 1]
 * @returns the severity
 */
export function severityOf(score: number): FlagSeverity {
  return score >= 0.8 ? 'high' : score >= 0.5 ? 'medium' : 'low';
}

/** Weight of a severity in [0, 1] (low 0.3, medium 0.6, high 1). */
export const SEVERITY_WEIGHT: Readonly<Record<FlagSeverity, number>> = Object.freeze({ low: 0.3, medium: 0.6, high: 1 });

/** Clamp to [0, 1] (NaN becomes 0). */
export function clamp01(x: number): number {
  return x > 1 ? 1 : x > 0 ? x : 0;
}

/**
 * A short description of a record's target, for flag details: path, `host:port` or detail.
 * @param r - the record
 * @returns the target or an empty string
 */
export function targetOf(r: TraceCallRecord): string {
  const a = r.args;
  if (a.path !== undefined) return a.path;
  if (a.host !== undefined) return a.port === undefined ? a.host : `${a.host}:${a.port}`;
  if (a.detail !== undefined) return a.detail;
  return '';
}

/**
 * Build a flag without undefined members (observer's flags omit absent fields).
 * @param name - the flag name
 * @param severity - its severity
 * @param detail - text for people
 * @param seq - the record it concerns
 * @returns the flag
 */
export function flag(name: string, severity: FlagSeverity, detail?: string, seq?: number): AnomalyFlag {
  const f: { name: string; severity: FlagSeverity; detail?: string; seq?: number } = { name, severity };
  if (detail !== undefined) f.detail = detail.length > 4096 ? `${detail.slice(0, 4095)}…` : detail;
  if (seq !== undefined) f.seq = seq;
  return f;
}
