import type { CanonicalValue, Clock } from '@forgeone/common';
import type { CryptoProvider, SigningKey, TrustRootDocument } from '@forgeone/crypto';
import type { BootVerdict, DifferingInput } from './appraise.js';
import type { DirectoryLimits, MeasurementEvent, MeasurementInput, MeasurementLog } from './measure.js';
import type { BootQuote } from './quote.js';

/**
 * How the kernel runs after boot.
 * - `normal`: everything is open.
 * - `recovery`: no workloads run; only diagnostics and recovery actions are open.
 * - `degraded`: compromised, but the signed config explicitly allows running anyway.
 */
export type BootMode = 'normal' | 'recovery' | 'degraded';

/** The outcome of loading and verifying the trust root. */
export type TrustRootCheck =
  | {
      /** The trust root parsed, is signed by a threshold of its root keys and has not expired. */
      readonly ok: true;
      /** Its version. */
      readonly version: number;
      /** Root keys that signed it. */
      readonly signers: readonly string[];
    }
  | {
      /** The trust root could not be read or did not verify. */
      readonly ok: false;
      /** The stable error code (e.g. `TRUST_ROOT_EXPIRED`, `TRUST_ROOT_SIGNATURE`, `IO_ERROR`). */
      readonly code: string;
      /** What went wrong. */
      readonly message: string;
    };

/** The outcome of loading and verifying the golden measurements. */
export type GoldenCheck =
  | {
      /** Verified against the trust root. */
      readonly status: 'verified';
      /** The golden document's version. */
      readonly version: number;
      /** The role whose keys counted (`boot`, or `root` when the trust root has no `boot` role). */
      readonly role: string;
      /** Keys that signed. */
      readonly signers: readonly string[];
    }
  | {
      /** No golden measurements were configured. */
      readonly status: 'absent';
    }
  | {
      /** Not checked: the trust root itself did not verify, so no key can vouch for golden values. */
      readonly status: 'unchecked';
    }
  | {
      /** Configured but unreadable, malformed or not signed by a threshold of the role. */
      readonly status: 'invalid';
      /** The stable error code. */
      readonly code: string;
      /** What went wrong. */
      readonly message: string;
    };

/** The measurements of one boot, before appraisal. */
export interface BootMeasurement extends MeasurementLog {
  /** The trust root check. */
  readonly trustRoot: TrustRootCheck;
  /** The verified trust root (the exact bytes measured as `trust-root`), or null when it did not verify. */
  readonly trustRootDocument: TrustRootDocument | null;
}

/** What a boot established. */
export interface BootResult {
  /** `verified`, `compromised` or `unknown` (no golden values). */
  readonly verdict: BootVerdict;
  /** How the kernel runs now. */
  readonly mode: BootMode;
  /** The final measurement value (hex). */
  readonly pcr: string;
  /** The final value and the event log's digest, signed by the kernel key. */
  readonly quote: BootQuote;
  /** The event log; `trust-root` is always event 0. */
  readonly events: readonly MeasurementEvent[];
  /** Every input that differs from what is trusted (see `appraise`), plus `trust-root` or `golden` when they did not verify. */
  readonly differing: readonly DifferingInput[];
  /** Names measured but absent from the golden values. */
  readonly unexpected: readonly string[];
  /** The trust root check. */
  readonly trustRoot: TrustRootCheck;
  /** The verified trust root, or null. */
  readonly trustRootDocument: TrustRootDocument | null;
  /** The golden check. */
  readonly golden: GoldenCheck;
  /** Why the kernel is in this mode, for people. */
  readonly reasons: readonly string[];
  /** When the boot was judged (ms since the epoch): the trust root's expiry and the quote use this one time. */
  readonly time: number;
  /** Whether the boot event reached the audit log (false when there is no audit sink, or it failed). */
  readonly audited: boolean;
}

/** The boot event for the audit log: shaped as `@forgeone/observer`'s `AuditEventInput` of kind `boot`. */
export interface BootAuditEvent {
  /** Always `boot`. */
  readonly kind: 'boot';
  /** Always `kernel`. */
  readonly subject: string;
  /** Always `kernel`. */
  readonly actor: string;
  /** The boot's time (ms since the epoch). */
  readonly time: number;
  /** Verdict, mode, pcr, quote, differing, unexpected, checks, reasons and (when they fit) the events. */
  readonly details: Readonly<Record<string, CanonicalValue>>;
}

/** Where boot events go; the kernel connects it to the audit log's `append`. */
export type BootAuditSink = (event: BootAuditEvent) => Promise<unknown>;

/** Options of `createBoot`. */
export interface BootOptions {
  /** Hashes and signatures. */
  readonly crypto: CryptoProvider;
  /** The trust root file (the trust anchor). Give this or `trustRoot`. */
  readonly trustRootPath?: string;
  /** The trust root as a document or JSON text. Give this or `trustRootPath`. */
  readonly trustRoot?: unknown;
  /**
   * Every other input the kernel trusts: kernel files (`kernelInputs`), `config`, `policy`, installed
   * packages. Names must be unique and must not be `trust-root` (boot measures the trust root itself, first).
   */
  readonly inputs: readonly MeasurementInput[];
  /** Signed golden measurements (document or JSON text); null or absent for none (verdict `unknown`). */
  readonly golden?: unknown;
  /**
   * A golden measurements file. Once configured it must be readable and valid: a missing file is `invalid`
   * (compromised), not `absent`, so deleting it cannot turn a boot from compromised into unknown.
   */
  readonly goldenPath?: string;
  /** Signs the quote. */
  readonly kernelKey: SigningKey;
  /**
   * The signed config explicitly allows degraded operation: a compromised boot then runs as `degraded`
   * instead of `recovery`. Honoured only when the trust root and golden values verified and the config input
   * itself (see `configInput`) was measured and matches its golden value — a tampered config cannot grant it.
   */
  readonly allowDegraded?: boolean;
  /** The name of the measured config input whose `allowDegraded` is trusted. Default `config`. */
  readonly configInput?: string;
  /**
   * Boot into recovery when there are no golden values (verdict `unknown`). Default false: a first boot or a
   * development machine runs normally. Production should set it, or rely on a remote verifier of the quote:
   * otherwise removing the golden values turns a compromised boot into an unknown one that runs.
   */
  readonly requireGolden?: boolean;
  /** Receives the boot event (the kernel connects it to the audit log). A failure forces recovery mode. */
  readonly audit?: BootAuditSink;
  /** The time source (default: the system clock). */
  readonly clock?: Clock;
  /** Directory walk limits. */
  readonly limits?: DirectoryLimits;
}

/** Measured boot: load and check the trust anchor, measure every trusted input, appraise, quote, audit. */
export interface Boot {
  /**
   * Load the trust root and measure everything, without appraisal, quote or audit (e.g. to record golden
   * values on a known-good machine with `createGolden`).
   * @returns the event log, the final value and the trust root check
   */
  measure(): Promise<BootMeasurement>;
  /**
   * Boot: check the trust root, measure, verify the golden values, appraise, choose the mode, quote and audit.
   * Never throws for bad or missing inputs: they make the verdict `compromised` and name the input.
   * @returns the result
   */
  boot(): Promise<BootResult>;
}
