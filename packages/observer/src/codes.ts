/**
 * The stable codes of verification findings. A finding names the first place where a trace or audit log
 * stops being what its signer wrote; tools match on these codes, never on message text.
 */
export const VerifyCodes = {
  /** A line is not JSON, not an object of the expected shape, or has unknown fields. */
  MALFORMED_LINE: 'a line is not a well-formed record of its type',
  /** A line is valid JSON but not in canonical form (key order, white space, escapes). */
  NOT_CANONICAL: 'a line is not in canonical JSON form',
  /** The first line is not a header of the expected format. */
  HEADER_MISSING: 'the first line is not the header',
  /** The header differs from the one the start checkpoint signed. */
  HEADER_ALTERED: 'the header was altered after it was signed',
  /** A line of a kind that cannot appear at this position (a second header, a checkpoint after a checkpoint...). */
  UNEXPECTED_LINE: 'a line appears where its kind is not allowed',
  /** A record's sequence number is not the next one: records were removed, reordered, duplicated or inserted. */
  RECORD_SEQUENCE: 'records are missing, reordered, duplicated or inserted',
  /** A record's bytes differ from those its block was sealed over. */
  RECORD_ALTERED: 'a record was altered after it was sealed',
  /** A seal covers records that are not there. */
  RECORD_MISSING: 'records covered by a seal are missing',
  /** A block is full (or a checkpoint or summary arrived) but no seal closes it. */
  SEAL_MISSING: 'a seal is missing',
  /** A seal's fields differ from what its records and the chain give. */
  SEAL_ALTERED: 'a seal was altered',
  /** Seals are not numbered consecutively from 0. */
  BLOCK_SEQUENCE: 'blocks are missing, reordered or duplicated',
  /** A checkpoint the format requires at this position is absent. */
  CHECKPOINT_MISSING: 'a required checkpoint is missing',
  /** A checkpoint is signed by a key that is not trusted (or not the one the header names). */
  CHECKPOINT_KEY_UNTRUSTED: 'a checkpoint is signed by an untrusted key',
  /** A checkpoint's signature does not verify. */
  CHECKPOINT_SIGNATURE_INVALID: 'a checkpoint signature is invalid',
  /** An authentic checkpoint signs a different point of the chain than where it stands. */
  CHECKPOINT_MISPLACED: 'a checkpoint does not match the chain at its position',
  /** The final summary differs from what the records give. */
  SUMMARY_MISMATCH: 'the summary does not match the records',
  /** The final summary differs from the one the stop checkpoint signed. */
  SUMMARY_ALTERED: 'the summary was altered after it was signed',
  /** The trace ends before its stop checkpoint (or the audit log before the checkpoint of its last event). */
  INCOMPLETE: 'the chain ends before its final signed checkpoint',
  /** Lines follow the stop checkpoint. */
  TRAILING_DATA: 'lines follow the stop checkpoint',
  /** The input is larger than the verifier accepts. */
  TOO_LARGE: 'the input exceeds a verification limit',
} as const;

/** A verification finding code (see {@link VerifyCodes}). */
export type VerifyCode = keyof typeof VerifyCodes;

/** One verification finding: what is wrong and where. */
export interface VerifyIssue {
  /** The stable code. */
  readonly code: VerifyCode;
  /** What is wrong, for people. */
  readonly message: string;
  /** The 1-based line of the exported file (the store record `line - 1`) where the problem is. */
  readonly line: number;
  /** The record (or audit event) sequence number concerned, when there is one. */
  readonly seq?: number;
  /** The block index concerned, when there is one. */
  readonly block?: number;
}
