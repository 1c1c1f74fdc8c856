export type { Boot, BootMode, BootOptions, BootResult, BootMeasurement, BootAuditEvent, BootAuditSink, TrustRootCheck, GoldenCheck } from './Boot.js';
export { createBoot, bootAuditEvent, TRUST_ROOT_INPUT, MAX_BOOT_DOCUMENT_BYTES } from './createBoot.js';
export {
  measure,
  measureDirectory,
  replayEventLog,
  parseEventLog,
  eventLogDigest,
  poisonDigest,
  extendPcr,
  INITIAL_PCR,
  POISON_PREFIX,
  DIRECTORY_DIGEST_PREFIX,
  SYMLINK_DIGEST_PREFIX,
  EVENT_LOG_DIGEST_PREFIX,
  MEASUREMENT_KINDS,
  MeasurementEventSchema,
  MeasurementEventsSchema,
  MeasurementNameSchema,
} from './measure.js';
export type { MeasurementKind, MeasurementSource, MeasurementInput, MeasurementEvent, MeasurementLog, MeasureOptions, DirectoryLimits } from './measure.js';
export { kernelInputs } from './kernel-inputs.js';
export type { KernelInputsOptions } from './kernel-inputs.js';
export {
  GOLDEN_SIGNING_PREFIX,
  GOLDEN_ROLE,
  GOLDEN_FALLBACK_ROLE,
  GoldenSchema,
  GoldenSignedSchema,
  goldenSigningBytes,
  parseGolden,
  signGolden,
  createGolden,
  verifyGolden,
} from './golden.js';
export type { GoldenDocument, GoldenSigned, GoldenVerification, CreateGoldenOptions } from './golden.js';
export { appraise } from './appraise.js';
export type { Appraisal, BootVerdict, DifferingInput, DifferenceReason } from './appraise.js';
export { QUOTE_SIGNING_PREFIX, BootQuoteSchema, quoteSigningBytes, createQuote, verifyQuote } from './quote.js';
export type { BootQuote, QuoteBody, VerifiedQuote } from './quote.js';
export { BOOT_MODE_ACTIONS, isActionAllowed, assertActionAllowed, assertWorkloadsAllowed } from './gate.js';
export type { BootAction } from './gate.js';
