/**
 * Stable error codes and the one error type every ForgeOne package throws or returns.
 *
 * Codes never change meaning once released: tools, API clients and tests match on `code`,
 * never on the message text.
 *
 * @packageDocumentation
 */

/** What each code means and how an HTTP API should report it. */
export interface ErrorCodeInfo {
  /** One sentence a person can read. */
  readonly description: string;
  /** HTTP status an API reports for this code. */
  readonly status: number;
  /** Whether retrying the same request later may succeed. */
  readonly retryable: boolean;
}

/**
 * The one table of error codes. Adding a code is a minor change; changing or removing one is breaking.
 */
export const ErrorCodes = {
  // generic
  INTERNAL: { description: 'An unexpected internal error.', status: 500, retryable: false },
  INVALID_ARGUMENT: { description: 'An argument is malformed or out of range.', status: 400, retryable: false },
  NOT_FOUND: { description: 'The named thing does not exist.', status: 404, retryable: false },
  ALREADY_EXISTS: { description: 'The thing to be created already exists.', status: 409, retryable: false },
  IO_ERROR: { description: 'A file or device operation failed.', status: 500, retryable: true },
  LIMIT_EXCEEDED: { description: 'A size or count limit was exceeded.', status: 413, retryable: false },

  // crypto primitives
  CRYPTO_INVALID_KEY: { description: 'A key has the wrong length or encoding.', status: 400, retryable: false },
  CRYPTO_INVALID_SIGNATURE_ENCODING: { description: 'A signature has the wrong length or encoding.', status: 400, retryable: false },
  CRYPTO_PROVIDER_MISMATCH: { description: 'Two crypto providers disagreed on the same input.', status: 500, retryable: false },

  // key files
  KEY_FILE_INVALID: { description: 'A key file is malformed.', status: 400, retryable: false },
  KEY_FILE_PERMISSIONS: { description: 'A private key file is readable by other users.', status: 400, retryable: false },
  KEY_FILE_EXISTS: { description: 'Refusing to overwrite an existing key file.', status: 409, retryable: false },

  // trust root
  TRUST_ROOT_INVALID: { description: 'The trust root document is malformed.', status: 400, retryable: false },
  TRUST_ROOT_SIGNATURE: { description: 'The trust root is not signed by a threshold of its root keys.', status: 400, retryable: false },
  TRUST_ROOT_EXPIRED: { description: 'The trust root has expired.', status: 400, retryable: false },
  TRUST_ROOT_VERSION: { description: 'A trust root update does not follow the current version by exactly one.', status: 409, retryable: false },
  TRUST_ROOT_ROLLBACK: { description: 'A trust root older than the one already accepted was offered.', status: 409, retryable: false },
  TRUST_ROOT_ROTATION: { description: 'A trust root update is not signed by a threshold of the previous root keys.', status: 400, retryable: false },
  TRUST_ROLE_UNKNOWN: { description: 'The trust root has no such role.', status: 400, retryable: false },

  // packages
  PKG_TRUNCATED: { description: 'The package file ends before its declared contents.', status: 400, retryable: false },
  PKG_BAD_MAGIC: { description: 'The file is not a .forgepkg package.', status: 400, retryable: false },
  PKG_UNSUPPORTED_VERSION: { description: 'The package format version is not supported.', status: 400, retryable: false },
  PKG_MALFORMED: { description: 'The package structure is malformed.', status: 400, retryable: false },
  PKG_LIMIT_EXCEEDED: { description: 'A package size or count exceeds its limit.', status: 413, retryable: false },
  PKG_DUPLICATE_ENTRY: { description: 'The package holds two entries with the same name.', status: 400, retryable: false },
  PKG_INVALID_PATH: { description: 'A file name in the package is not a safe relative path.', status: 400, retryable: false },
  PKG_INVALID_UTF8: { description: 'Text in the package is not valid UTF-8.', status: 400, retryable: false },
  PKG_MANIFEST_INVALID: { description: 'The package manifest does not match its schema.', status: 400, retryable: false },
  PKG_MANIFEST_NOT_CANONICAL: { description: 'The manifest bytes are not in canonical form.', status: 400, retryable: false },
  PKG_CONTENT_MISMATCH: { description: 'The package content does not match the files its manifest lists.', status: 400, retryable: false },
  PKG_HASH_MISMATCH: { description: 'A content file does not match the hash in the manifest.', status: 400, retryable: false },
  PKG_EXPIRED: { description: 'The package has expired.', status: 400, retryable: false },
  PKG_NOT_YET_VALID: { description: 'The package was created in the future.', status: 400, retryable: false },
  PKG_ROLLBACK: { description: 'A version lower than one already accepted for this package name.', status: 409, retryable: false },
  PKG_UNSIGNED: { description: 'The package carries no signatures.', status: 400, retryable: false },
  PKG_SIGNATURE_INVALID: { description: 'A signature does not verify, so the quorum is not met.', status: 400, retryable: false },
  PKG_SIGNER_UNTRUSTED: { description: 'Signatures come from keys the trust root does not trust for packages.', status: 400, retryable: false },
  PKG_SIGNER_REVOKED: { description: 'A signature comes from a revoked key, so the quorum is not met.', status: 400, retryable: false },
  PKG_SIGNATURE_DUPLICATE: { description: 'One key signed more than once; it counts once, so the quorum is not met.', status: 400, retryable: false },
  PKG_QUORUM_NOT_MET: { description: 'Fewer distinct trusted keys signed than the threshold requires.', status: 400, retryable: false },

  // policy, sandbox, runtime (used by later subsystems)
  POLICY_DENIED: { description: 'The policy denied the call.', status: 403, retryable: false },
  POLICY_INVALID: { description: 'The policy document is malformed.', status: 400, retryable: false },
  POLICY_RATE_LIMITED: { description: 'A rate limit of the policy refused the call.', status: 429, retryable: true },
  POLICY_BUNDLE_SIGNATURE: { description: 'The policy bundle is not signed by a threshold of the policy role.', status: 400, retryable: false },
  POLICY_VERSION: { description: 'The policy bundle is not newer than the current policy.', status: 409, retryable: false },
  QUARANTINE_STATE: { description: 'The quarantine record is not in a state that allows this action.', status: 409, retryable: false },
  SANDBOX_CPU_EXCEEDED: { description: 'The workload exceeded its CPU budget.', status: 429, retryable: false },
  SANDBOX_MEMORY_EXCEEDED: { description: 'The workload exceeded its memory limit.', status: 413, retryable: false },
  CONTAINER_QUARANTINED: { description: 'The container is quarantined.', status: 423, retryable: true },
  CONTAINER_TERMINATED: { description: 'The container was terminated; it makes no more calls.', status: 410, retryable: false },
  CONTAINER_FAILED: { description: 'The container stopped with an error.', status: 500, retryable: false },
  CONTAINER_INVALID_TRANSITION: { description: 'The container is not in a state that allows this lifecycle change.', status: 409, retryable: false },
  KERNEL_RESTART: { description: 'The kernel restarted while the container was active; it did not finish.', status: 503, retryable: true },
  IDENTITY_COMPROMISED: { description: 'The identity is marked compromised; it never runs.', status: 403, retryable: false },
  SCHEDULER_UNSCHEDULABLE: { description: 'No node can ever hold the workload: resources, location or labels match none.', status: 422, retryable: false },
  SANDBOX_LIMIT_EXCEEDED: { description: 'A sandbox limit (containers, descriptors, output size) was exceeded.', status: 429, retryable: true },
  SANDBOX_TIMEOUT: { description: 'The workload did not finish within its wall-clock time limit.', status: 504, retryable: false },
  WASM_INVALID: { description: 'The bytes are not a valid WebAssembly module or component.', status: 400, retryable: false },
  WASM_LINK_ERROR: { description: 'The WebAssembly module imports something the host cannot supply.', status: 400, retryable: false },
  WASM_TRAP: { description: 'The guest trapped (unreachable, out-of-bounds access, stack overflow, ...).', status: 500, retryable: false },
  WASM_TRANSPILE_FAILED: { description: 'The component could not be transpiled for the host.', status: 400, retryable: false },
  WASM_EXPORT_MISSING: { description: 'The guest does not export the function that was called.', status: 400, retryable: false },
  NET_FAILED: { description: 'A network operation the policy allowed failed (refused, reset, unreachable, timed out, name not resolved).', status: 502, retryable: true },
  CONFIG_INVALID: { description: 'The configuration is malformed.', status: 400, retryable: false },

  // config
  CONFIG_SIGNATURE_INVALID: { description: 'The config file is not signed by a threshold of the trust root\'s config role.', status: 400, retryable: false },
  CONFIG_ROLLBACK: { description: 'The offered config version is not higher than the one in force.', status: 409, retryable: false },
  CONFIG_SECRET_MISSING: { description: 'The environment variable a config secret names is not set.', status: 500, retryable: false },

  STATE_CORRUPT: { description: 'A persisted state file is corrupt.', status: 500, retryable: false },
  // snapshots
  SNAPSHOT_INVALID: { description: 'A snapshot file is malformed, altered, truncated, or not signed by a trusted key.', status: 400, retryable: false },
  SNAPSHOT_MODULE_MISMATCH: { description: 'A snapshot was offered to an instance of a different module than the one it was taken of.', status: 409, retryable: false },
  SNAPSHOT_UNSUPPORTED: { description: 'The instance holds state a snapshot cannot capture or restore.', status: 422, retryable: false },
  // replay
  REPLAY_DIVERGED: { description: 'A replayed run made a host call (or got a result) the recorded run did not.', status: 409, retryable: false },
  REPLAY_UNSUPPORTED: { description: 'The trace holds calls this replay cannot answer from the record.', status: 422, retryable: false },
  // boot
  BOOT_RECOVERY_MODE: { description: 'The kernel booted into recovery mode; only diagnostics and recovery actions are open.', status: 503, retryable: false },
  BOOT_GOLDEN_INVALID: { description: 'The golden measurements are malformed or not signed by a threshold of the boot role.', status: 400, retryable: false },
  BOOT_QUOTE_INVALID: { description: 'A boot quote does not verify: bad signature, wrong key, or an event log that does not replay to it.', status: 400, retryable: false },
  // diagnostics
  SELFTEST_FAILED: { description: 'A self-test failed or could not run; the kernel runs degraded.', status: 503, retryable: false },
  // api
  AUTH_MISSING: { description: 'The request carries no bearer token.', status: 401, retryable: false },
  AUTH_INVALID: { description: 'The bearer token is malformed, not signed by a trusted key, or its claims are wrong.', status: 401, retryable: false },
  AUTH_EXPIRED: { description: 'The bearer token has expired (or is not valid yet).', status: 401, retryable: false },
  AUTH_FORBIDDEN: { description: 'The token\'s role does not allow this request.', status: 403, retryable: false },
  RATE_LIMITED: { description: 'Too many requests with this token; retry after the time the response gives.', status: 429, retryable: true },
  UNSUPPORTED_MEDIA_TYPE: { description: 'The request body has a content type this endpoint does not take.', status: 415, retryable: false },
} as const satisfies Record<string, ErrorCodeInfo>;

/** Every stable error code. */
export type ErrorCode = keyof typeof ErrorCodes;

/** Options for constructing a {@link ForgeError}. */
export interface ForgeErrorOptions {
  /** The underlying error, kept for diagnostics. */
  readonly cause?: unknown;
  /** Structured, non-secret details (paths, key ids, limits) for machines. */
  readonly details?: Readonly<Record<string, unknown>>;
  /** Overrides the table's retryable flag. */
  readonly retryable?: boolean;
}

/**
 * The error every ForgeOne package throws or returns. Match on {@link ForgeError.code}, not on
 * `instanceof` (two installed copies of this package would break `instanceof`): use {@link isForgeError}.
 *
 * @example
 * ```ts
 * throw new ForgeError('PKG_EXPIRED', 'package hello@1.0.0 expired at 2026-01-01T00:00:00Z');
 * ```
 */
export class ForgeError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;
  /** Whether retrying later may succeed. */
  readonly retryable: boolean;
  /** Structured details for machines. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  /**
   * @param code - a stable code from {@link ErrorCodes}
   * @param message - what went wrong, for people; never include secrets
   * @param options - cause, details and retryable override
   */
  constructor(code: ErrorCode, message: string, options: ForgeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ForgeError';
    this.code = code;
    this.retryable = options.retryable ?? ErrorCodes[code].retryable;
    this.details = options.details;
  }

  /** HTTP status for this error's code. */
  get status(): number {
    return ErrorCodes[this.code].status;
  }

  /**
   * A plain object safe to print or send: code, message, retryable and details (never the cause's stack).
   * @returns the JSON form
   */
  toJSON(): { code: ErrorCode; message: string; retryable: boolean; details?: Readonly<Record<string, unknown>> } {
    return this.details === undefined
      ? { code: this.code, message: this.message, retryable: this.retryable }
      : { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

/**
 * Whether a value is a {@link ForgeError}, judged by name and code (works across package copies).
 * @param value - anything caught
 * @returns true when `value` carries a known ForgeOne error code
 */
export function isForgeError(value: unknown): value is ForgeError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { name?: unknown }).name === 'ForgeError' &&
    typeof (value as { code?: unknown }).code === 'string' &&
    Object.hasOwn(ErrorCodes, (value as { code: string }).code)
  );
}

/**
 * Normalise anything thrown into a {@link ForgeError}: ForgeErrors pass through, anything else becomes
 * `fallback` (default `INTERNAL`) with the original kept as `cause`.
 * @param value - anything caught
 * @param fallback - code for values that are not ForgeErrors
 * @returns a ForgeError
 */
export function toForgeError(value: unknown, fallback: ErrorCode = 'INTERNAL'): ForgeError {
  if (isForgeError(value)) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new ForgeError(fallback, message, { cause: value });
}

/**
 * Whether a string is a known error code.
 * @param code - a candidate code
 * @returns true when `code` is in {@link ErrorCodes}
 */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ErrorCodes, code);
}
