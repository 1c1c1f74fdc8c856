/**
 * `@forgeone/diagnostics`: is the kernel healthy, and is a package behaving like itself?
 *
 * - **Self-tests** ({@link createSelfTestRegistry}): registered with dependencies, run in dependency order,
 *   each passed, failed, skipped or error with a message and a duration; the report goes to the audit log and
 *   any failure marks the kernel degraded. Built in: crypto known answers ({@link cryptoSelfTests}), policy
 *   canaries ({@link policySelfTests}), store ({@link storeSelfTests}), clock ({@link clockSelfTests}), trust
 *   root ({@link trustRootSelfTests}), and a sandbox canary the kernel provides ({@link sandboxSelfTests}).
 * - **Anomaly detection** ({@link AnomalyDetector}): pluggable detectors that learn a package's normal runs
 *   per name and version ({@link createStoreBaselines}) and score new runs, whole or call by call: call
 *   sequences ({@link createSequenceDetector}), frequencies and rates ({@link createFrequencyDetector}),
 *   declarative rules ({@link createRuleDetector}), combined by {@link createDetectorSet}. Their flags feed the
 *   trace explanation and integrity score ({@link analyzeTrace}).
 * - **Heatmaps** ({@link buildHeatmap}, {@link renderHeatmapSvg}): denials and anomalies over identity ×
 *   syscall and container × time, as JSON and SVG.
 * - **Tightening** ({@link planTightening}, {@link applyTightening}, {@link revertTightening}): hot cells climb
 *   audit → delay → deny → quarantine through the policy engine's tightening API, audited and revertible.
 *
 * @packageDocumentation
 */
export type { DiagnosticsAuditEvent, DiagnosticsAuditSink } from './audit.js';
export { checkBaselineKey, isRefused, severityOf, SEVERITY_WEIGHT, MAX_KEY_PART } from './anomaly/types.js';
export type { AnomalyDetector, AnomalyResult, BaselineKey, RunObserver, RunRecords } from './anomaly/types.js';
export { BASELINE_FORMAT, DEFAULT_BASELINE_NAMESPACE, DETECTOR_NAME, createStoreBaselines } from './anomaly/baselines.js';
export type { BaselineEntry, BaselineStore } from './anomaly/baselines.js';
export { createSequenceDetector } from './anomaly/sequence.js';
export type { SequenceDetectorOptions } from './anomaly/sequence.js';
export { coarseTarget, createFrequencyDetector } from './anomaly/frequency.js';
export type { FrequencyDetectorOptions } from './anomaly/frequency.js';
export { DEFAULT_DETECTION_RULES, DetectionRuleSchema, RULE_PLACEHOLDERS, createRuleDetector, parseDetectionRules } from './anomaly/rules.js';
export type { DetectionRule, DetectionRuleInput, RuleDetectorOptions } from './anomaly/rules.js';
export { createDetectorSet } from './anomaly/set.js';
export type { DetectorSet, DetectorSetOptions, DetectorSetResult } from './anomaly/set.js';
export { analyzeTrace, runIntegrity, traceKey } from './anomaly/analyze.js';
export type { TraceAnalysis } from './anomaly/analyze.js';
export { DENIAL_HALF, HEATMAP_FORMAT, RUN_COLUMN, buildHeatmap, cellScore } from './heatmap/build.js';
export type { ContainerIntegrity, Heatmap, HeatmapCell, HeatmapGrid, HeatmapOptions, HeatmapRun, TimeGrid } from './heatmap/build.js';
export { heatColor, renderHeatmapSvg } from './heatmap/svg.js';
export type { HeatmapSvgOptions } from './heatmap/svg.js';
export { TIGHTENING_ACTOR, TIGHTENING_LADDER, applyTightening, currentRung, planTightening, revertTightening } from './tighten.js';
export type {
  AppliedTightening,
  PlanTighteningOptions,
  TighteningApplyOptions,
  TighteningEngine,
  TighteningPlan,
  TighteningRung,
  TighteningStep,
  TighteningThresholds,
} from './tighten.js';
export { SELFTEST_NAME, SelfTestFailure, createSelfTestRegistry } from './selftest/registry.js';
export type {
  RunSelfTestsOptions,
  SelfTest,
  SelfTestContext,
  SelfTestOutcome,
  SelfTestRegistry,
  SelfTestRegistryOptions,
  SelfTestReport,
  SelfTestResult,
  SelfTestStatus,
} from './selftest/registry.js';
export {
  CANARY_POLICY,
  ED25519_VECTORS,
  SHA3_256_VECTORS,
  builtinSelfTests,
  clockSelfTests,
  cryptoAgreementSelfTest,
  cryptoSelfTests,
  policySelfTests,
  sandboxSelfTests,
  storeSelfTests,
  trustRootSelfTests,
} from './selftest/builtins.js';
export type { BuiltinSelfTestDeps, ClockSelfTestOptions, SandboxSelfTestOptions, StoreSelfTestTarget, TrustRootSelfTestOptions } from './selftest/builtins.js';
