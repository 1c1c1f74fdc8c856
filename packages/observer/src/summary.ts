import { wellFormed } from './record.js';
import type { TraceCallRecord } from './record.js';

/** How serious an anomaly flag is. */
export type FlagSeverity = 'low' | 'medium' | 'high';

/** An anomaly or other red flag raised about a run (by the kernel, a detector, or a person). */
export interface AnomalyFlag {
  /** A short stable name, e.g. `burst-of-denials` or `unexpected-host`. */
  readonly name: string;
  /** How serious it is; drives the integrity score and the verdict. */
  readonly severity: FlagSeverity;
  /** Free text for people. */
  readonly detail?: string | undefined;
  /** The record it concerns, when there is one. */
  readonly seq?: number | undefined;
}

/** A refused or quarantining call, listed in the summary. */
export interface RedFlag {
  /** The record. */
  readonly seq: number;
  /** The syscall. */
  readonly syscall: string;
  /** The verdict: `deny`, `quarantine` or `terminated`. */
  readonly verdict: string;
  /** The deciding rule, or null (default action). */
  readonly rule: string | null;
}

/** Counts of calls by outcome. */
export interface CallCounts {
  /** All records. */
  readonly records: number;
  /** Calls performed (allowed or audited). */
  readonly allowed: number;
  /** Calls with verdict `audit`. */
  readonly audits: number;
  /** Calls with verdict `deny`. */
  readonly denials: number;
  /** Calls with verdict `quarantine` (the call that put the container in quarantine). */
  readonly quarantines: number;
  /** Calls refused because the container was quarantined (verdict `suspended`). */
  readonly suspended: number;
  /** Calls refused because the container was terminated (verdict `terminated`). */
  readonly terminated: number;
}

/**
 * Penalties of the integrity score, in thousandths. The score is `1000 - Σ penalties` per mille, floored at
 * 0 (integers, so writer and verifier always agree): each denial costs 50, each quarantining call 250, a
 * terminated run 500, and each anomaly flag 20 (low), 100 (medium) or 300 (high).
 */
export const INTEGRITY_PENALTIES = Object.freeze({
  denial: 50,
  quarantine: 250,
  terminated: 500,
  flag: Object.freeze({ low: 20, medium: 100, high: 300 } as const),
});

/** At most this many red flags are listed in a summary; the rest are only counted. */
export const MAX_RED_FLAGS = 256;

/**
 * The integrity score of a run, in thousandths (see {@link INTEGRITY_PENALTIES}).
 * @param counts - call counts
 * @param flags - anomaly flags
 * @param terminated - whether the run was terminated
 * @returns 0 … 1000
 */
export function integrityMilli(counts: Pick<CallCounts, 'denials' | 'quarantines'>, flags: readonly AnomalyFlag[], terminated: boolean): number {
  let penalty = counts.denials * INTEGRITY_PENALTIES.denial + counts.quarantines * INTEGRITY_PENALTIES.quarantine;
  if (terminated) penalty += INTEGRITY_PENALTIES.terminated;
  for (const f of flags) penalty += INTEGRITY_PENALTIES.flag[f.severity] ?? 0;
  return Math.max(0, 1000 - penalty);
}

/** Accumulates counts and red flags over records, in the writer and in the verifier alike. */
export class SummaryAccumulator {
  records = 0;
  allowed = 0;
  audits = 0;
  denials = 0;
  quarantines = 0;
  suspended = 0;
  terminated = 0;
  readonly redFlags: RedFlag[] = [];
  redFlagsOmitted = 0;

  /**
   * Count one record.
   * @param r - the record
   */
  add(r: Pick<TraceCallRecord, 'seq' | 'syscall' | 'verdict' | 'rule' | 'allowed'>): void {
    this.records++;
    if (r.allowed) this.allowed++;
    switch (r.verdict) {
      case 'audit':
        this.audits++;
        break;
      case 'deny':
        this.denials++;
        break;
      case 'quarantine':
        this.quarantines++;
        break;
      case 'suspended':
        this.suspended++;
        break;
      case 'terminated':
        this.terminated++;
        break;
      default:
        break;
    }
    if (r.verdict === 'deny' || r.verdict === 'quarantine' || r.verdict === 'terminated') {
      if (this.redFlags.length < MAX_RED_FLAGS) this.redFlags.push({ seq: r.seq, syscall: wellFormed(r.syscall), verdict: r.verdict, rule: r.rule === null ? null : wellFormed(r.rule) });
      else this.redFlagsOmitted++;
    }
  }

  /** @returns the counts so far */
  counts(): CallCounts {
    return {
      records: this.records,
      allowed: this.allowed,
      audits: this.audits,
      denials: this.denials,
      quarantines: this.quarantines,
      suspended: this.suspended,
      terminated: this.terminated,
    };
  }
}
