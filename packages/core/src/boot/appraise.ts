import type { GoldenDocument } from './golden.js';
import type { MeasurementEvent } from './measure.js';

/** The outcome of comparing measurements with golden values. */
export type BootVerdict = 'verified' | 'compromised' | 'unknown';

/** Why an input counts as differing. */
export type DifferenceReason =
  /** Measured, but not to the golden digest. */
  | 'mismatch'
  /** Could not be measured; its poison digest was extended. */
  | 'poison'
  /** Has a golden value but was not measured at all. */
  | 'missing'
  /** Measured, but did not verify (a trust root or golden document whose signatures, form or expiry fail). */
  | 'unverified';

/** One input that does not match what is trusted. */
export interface DifferingInput {
  /** The input's name. */
  readonly name: string;
  /** The golden digest, or null when the golden values have none (or there are none). */
  readonly expected: string | null;
  /** The measured digest, `poison` when it could not be measured, `missing` when it was not measured. */
  readonly actual: string | 'poison' | 'missing';
  /** Why it differs. */
  readonly reason: DifferenceReason;
  /** The measurement or verification error, when there is one. */
  readonly error?: string;
}

/** The outcome of {@link appraise}. */
export interface Appraisal {
  /** `verified`: every input matches and nothing is extra; `compromised`: something differs; `unknown`: no golden values. */
  readonly verdict: BootVerdict;
  /** Every input that differs, in event order, then golden names that were not measured (in name order). */
  readonly differing: readonly DifferingInput[];
  /** Names measured but absent from the golden values (sorted). They make the verdict `compromised`. */
  readonly unexpected: readonly string[];
}

/**
 * Compare an event log with golden values. The golden document must already be verified (`verifyGolden`).
 * - No golden values: `unknown`, unless an input is poisoned — a measurement that cannot be taken is
 *   `compromised` with or without golden values, and is named.
 * - Otherwise `verified` only when every golden name was measured to its digest and no other name was
 *   measured; each poisoned, mismatching or missing input is named in `differing`, each extra one in
 *   `unexpected` (an input nobody vouched for is not trusted, so it too makes the verdict `compromised`).
 * @param events - the event log
 * @param golden - verified golden values, or null when there are none
 * @returns the verdict and every difference
 */
export function appraise(events: readonly MeasurementEvent[], golden: GoldenDocument | null): Appraisal {
  const differing: DifferingInput[] = [];
  const unexpected = new Set<string>();
  const expectedOf = (name: string): string | null => (golden !== null && Object.hasOwn(golden.signed.measurements, name) ? golden.signed.measurements[name]! : null);
  const seen = new Set<string>();
  for (const e of events) {
    seen.add(e.name);
    const expected = expectedOf(e.name);
    if (golden !== null && expected === null) unexpected.add(e.name);
    if (e.poisoned) {
      differing.push(e.error === undefined ? { name: e.name, expected, actual: 'poison', reason: 'poison' } : { name: e.name, expected, actual: 'poison', reason: 'poison', error: e.error });
    } else if (expected !== null && expected !== e.digest) {
      differing.push({ name: e.name, expected, actual: e.digest, reason: 'mismatch' });
    }
  }
  if (golden !== null) {
    for (const name of Object.keys(golden.signed.measurements).sort()) {
      if (!seen.has(name)) differing.push({ name, expected: golden.signed.measurements[name]!, actual: 'missing', reason: 'missing' });
    }
  }
  const compromised = differing.length > 0 || unexpected.size > 0;
  const verdict: BootVerdict = compromised ? 'compromised' : golden === null ? 'unknown' : 'verified';
  return { verdict, differing, unexpected: [...unexpected].sort() };
}
