import type { CanonicalValue } from '@forgeone/common';

/**
 * An event diagnostics hands to the audit log: shaped as `@forgeone/observer`'s `AuditEventInput`, so an audit
 * log's `append` is a sink as it is (`audit: (e) => auditLog.append(e)`). Details are canonical JSON data
 * (integers only: scores are given in thousandths, durations in microseconds).
 */
export interface DiagnosticsAuditEvent {
  /** `selftest` for a self-test run, `policy.changed` for a tightening step or its revert. */
  readonly kind: 'selftest' | 'policy.changed';
  /** What it concerns: `kernel` for self-tests, the policy name for tightenings. */
  readonly subject: string;
  /** Who did it, e.g. `diagnostics:selftest` or `diagnostics:tightening`. */
  readonly actor: string;
  /** When, ms since the epoch (integer). */
  readonly time: number;
  /** Structured details. */
  readonly details: Readonly<Record<string, CanonicalValue>>;
}

/**
 * Where diagnostics events go. The kernel connects it to the audit log; a rejected promise is reported to the
 * caller of the operation that produced the event (the operation itself has happened).
 */
export type DiagnosticsAuditSink = (event: DiagnosticsAuditEvent) => Promise<unknown>;

/** Scores in [0, 1] as integer thousandths, for canonical JSON. */
export function milli(score: number): number {
  return Math.round(Math.min(1, Math.max(0, score)) * 1000);
}

/** Cut a string to at most `max` UTF-16 units (for audit details). */
export function clip(text: string, max = 512): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
