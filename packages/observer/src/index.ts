/**
 * `@forgeone/observer`: what ForgeOne remembers of a run, in a form nobody can quietly change.
 *
 * - **Execution DNA** ({@link createTraceWriter}): every host call of a container, sealed in hash-chained
 *   blocks and signed by the kernel key at start, at quarantine, every N blocks and at stop, with a final
 *   summary (integrity score, red flags). Kept in one append-only store log per trace.
 * - **Offline verification** ({@link verifyTrace}): finds any altered, removed, reordered or inserted line
 *   and says where, with a stable code ({@link VerifyCodes}).
 * - **The audit log** ({@link createAuditLog}): the same structure for kernel events, each event signed,
 *   with evidence bundles that verify offline ({@link verifyAuditExport}).
 * - **Explanations** ({@link explainTrace}): who ran what, what it touched, what was refused and why, a
 *   score and a verdict, as text and JSON.
 * - **Telemetry** ({@link createTelemetry}, {@link createMetrics}): OpenTelemetry spans for runs and refused
 *   calls through `@opentelemetry/api` (silent without an SDK), and Prometheus metrics in the text format.
 *
 * The format is described in `docs/dna.md` of this package.
 *
 * @packageDocumentation
 */
export { VerifyCodes } from './codes.js';
export type { VerifyCode, VerifyIssue } from './codes.js';
export { CALL_VERDICTS, MAX_RECORD_STRING, toBase64, fromBase64 } from './record.js';
export type { CallVerdict, CallArgs, TraceCallRecord } from './record.js';
export { INTEGRITY_PENALTIES, MAX_RED_FLAGS, integrityMilli } from './summary.js';
export type { AnomalyFlag, FlagSeverity, RedFlag, CallCounts } from './summary.js';
export type { TrustedKeys, VerifiedCheckpoint } from './chain.js';
export {
  DNA_FORMAT,
  TRACE_ID,
  DEFAULT_BLOCK_SIZE,
  MAX_LINE_LENGTH,
  MAX_INVOCATION_INPUT,
  TraceHeaderSchema,
  TraceSummarySchema,
  traceLogName,
  createTraceWriter,
  verifyTrace,
  parseTrace,
  exportTrace,
  openTrace,
  readTrace,
} from './trace.js';
export type {
  TraceHeader,
  TraceSummary,
  TraceIdentityInput,
  TraceHeaderInit,
  TraceStopInput,
  TraceCheckpointInfo,
  TraceWriterOptions,
  TraceWriter,
  Trace,
  VerifyTraceOptions,
  TraceVerification,
  TraceHandle,
} from './trace.js';
export {
  AUDIT_FORMAT,
  AUDIT_EVIDENCE_FORMAT,
  AUDIT_KINDS,
  MAX_AUDIT_DETAILS_BYTES,
  AuditHeaderSchema,
  AuditEventLineSchema,
  AuditEvidenceSchema,
  createAuditLog,
  matchesAuditFilter,
  verifyAuditLog,
  verifyAuditExport,
} from './audit.js';
export type {
  AuditKind,
  AuditHeader,
  AuditEventInput,
  AuditEntry,
  AuditFilter,
  AuditVerification,
  AuditEvidence,
  EvidenceIssue,
  AuditEvidenceVerification,
  AuditLog,
  AuditLogOptions,
} from './audit.js';
export { VERDICT_RULES, explainTrace } from './explain.js';
export type { TraceVerdict, ExplainOptions, TouchedItem, DenialGroup, TraceExplanationJson, TraceExplanation } from './explain.js';
export { PROMETHEUS_CONTENT_TYPE, GATE_LATENCY_BUCKETS, TRACER_NAME, createMetrics, createTelemetry } from './telemetry.js';
export type { Metrics, MetricsOptions, RunSpanInfo, RunEnd, RunTelemetry, TelemetryOptions, Telemetry } from './telemetry.js';
export * from './snapshot.js';
