import { explainTrace, integrityMilli } from '@forgeone/observer';
import type { AnomalyFlag, ExplainOptions, Trace, TraceExplanation } from '@forgeone/observer';
import { checkRecords } from './types.js';
import type { AnomalyDetector, AnomalyResult, BaselineKey, RunRecords } from './types.js';

/**
 * The baseline key of a trace: its package name and version.
 * @param trace - a trace (`readTrace` / `parseTrace`)
 * @returns the key
 */
export function traceKey(trace: Pick<Trace, 'header'>): BaselineKey {
  return { packageName: trace.header.package.name, packageVersion: trace.header.package.version };
}

/**
 * The integrity score of a run from its records and flags, as the observer computes it (each denial, each
 * quarantining call, termination and each flag by severity lower it; see `INTEGRITY_PENALTIES`).
 * @param records - the run
 * @param flags - its anomaly flags
 * @param terminated - whether the run was terminated (default: any record says so)
 * @returns the score in [0, 1]
 * @throws ForgeError `INVALID_ARGUMENT` for malformed records
 */
export function runIntegrity(records: RunRecords, flags: readonly AnomalyFlag[], terminated?: boolean): number {
  checkRecords(records);
  let denials = 0;
  let quarantines = 0;
  let term = false;
  for (const r of records) {
    if (r.verdict === 'deny') denials++;
    else if (r.verdict === 'quarantine') quarantines++;
    else if (r.verdict === 'terminated') term = true;
  }
  return integrityMilli({ denials, quarantines }, flags, terminated ?? term) / 1000;
}

/** What {@link analyzeTrace} found. */
export interface TraceAnalysis {
  /** The detector's result for the trace's records, against its package's baseline. */
  readonly anomaly: AnomalyResult;
  /** The trace's explanation with the detector's flags added: its integrity score counts them. */
  readonly explanation: TraceExplanation;
}

/** Identity of a flag: the same finding (name, severity, detail, record) from the same detector on the same run. */
function flagKey(f: AnomalyFlag): string {
  return JSON.stringify([f.name, f.severity, f.detail ?? null, f.seq ?? null]);
}

/**
 * Score a recorded run and explain it with the anomalies found: the integrity score and the verdict of the
 * explanation then reflect denials and anomalies together. A flag the trace's summary already holds (the kernel
 * scored the run with the same detector when it stopped) is not added again, so it is counted once.
 * @param trace - a trace (`readTrace` / `parseTrace`)
 * @param detector - the detector (a set, usually)
 * @param options - explanation options (rule texts, verification); `flags` given here are kept too
 * @returns the anomaly result and the explanation
 * @throws ForgeError from the detector (`STATE_CORRUPT` for a damaged baseline)
 * @example
 * ```ts
 * const { anomaly, explanation } = await analyzeTrace(parseTrace(text), detector);
 * console.log(anomaly.score, explanation.json.integrity.score, explanation.json.verdict.level);
 * ```
 */
export async function analyzeTrace(trace: Trace, detector: AnomalyDetector, options: ExplainOptions = {}): Promise<TraceAnalysis> {
  const anomaly = await detector.score(trace.records, traceKey(trace));
  const recorded = new Set((trace.summary?.flags ?? []).map(flagKey));
  const added = anomaly.flags.filter((f) => !recorded.has(flagKey(f)));
  const explanation = explainTrace(trace, { ...options, flags: [...(options.flags ?? []), ...added] });
  return { anomaly, explanation };
}
