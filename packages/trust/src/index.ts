/**
 * `@forgeone/trust`: the zero-trust policy engine.
 *
 * @packageDocumentation
 */
export * from './schema.js';
export { parsePolicy, nodeOrder, syscallPatternMatcher } from './parse.js';
export type { ParsedPolicy, PolicyWarning } from './parse.js';
export { compilePolicy, activateNodes, globSource } from './compile.js';
export type { Decision, RuleTrace, Explanation, CompileTarget, CompiledPolicy, CompileOptions } from './compile.js';
export {
  POLICY_SIGNING_PREFIX,
  policySigningBytes,
  signPolicyBundle,
  verifyPolicyBundle,
  createPolicyEngine,
  isAllowed,
  shouldQuarantine,
  isFlagged,
  VERDICT_ORDER,
} from './engine.js';
export type { PolicyBundle, EnforcementMode, ContainerPolicy, PolicyChange, TightenRequest, PolicyEngine, PolicyEngineDeps } from './engine.js';
export { createRedzone } from './redzone.js';
export type {
  Redzone,
  RedzoneOptions,
  QuarantineState,
  QuarantineAction,
  QuarantineInput,
  QuarantineTransition,
  QuarantineRecord,
  QuarantineEventKind,
  QuarantineEvent,
  QuarantineCallRecord,
  QuarantineDenial,
  QuarantineSyscallCount,
  QuarantineFlagCount,
  QuarantineReport,
  QuarantineFilter,
} from './redzone.js';
export { createReferenceState, referenceActiveNodes, referenceDecide } from './reference.js';
export type { ReferenceBucket, ReferenceState, ReferenceDecision } from './reference.js';
