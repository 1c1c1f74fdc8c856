import { readFile } from 'node:fs/promises';
import { ForgeError, canonicalJson, canonicalJsonBytes, decodeUtf8Strict, isForgeError, systemClock, toHex, utf8 } from '@forgeone/common';
import type { CanonicalValue } from '@forgeone/common';
import { parseTrustRoot, verifyTrustRoot } from '@forgeone/crypto';
import type { TrustRootDocument } from '@forgeone/crypto';
import { appraise, type DifferingInput } from './appraise.js';
import type { Boot, BootAuditEvent, BootMeasurement, BootMode, BootOptions, BootResult, GoldenCheck, TrustRootCheck } from './Boot.js';
import { verifyGolden, type GoldenDocument } from './golden.js';
import { checkInputs, measureWithFailures, type MeasurementInput, type MeasurementSource } from './measure.js';
import { createQuote } from './quote.js';

/** The name of the trust root's measurement; always event 0. */
export const TRUST_ROOT_INPUT = 'trust-root';

/** Largest trust root or golden file read, in bytes. */
export const MAX_BOOT_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** Budget for the boot event's details (the audit log takes up to 64 KiB). */
const AUDIT_DETAILS_BUDGET = 60 * 1024;

interface Loaded {
  /** The bytes, or the error that stopped reading them. */
  readonly bytes: Uint8Array | null;
  readonly error: ForgeError | null;
}

function errorOf(e: unknown, fallback: 'IO_ERROR' | 'INVALID_ARGUMENT'): ForgeError {
  if (isForgeError(e)) return e;
  const code = (e as { code?: unknown })?.code;
  const message = e instanceof Error ? e.message : String(e);
  return new ForgeError(code === 'ENOENT' ? 'NOT_FOUND' : fallback, message, { cause: e });
}

async function readBounded(path: string): Promise<Loaded> {
  try {
    const bytes = new Uint8Array(await readFile(path));
    if (bytes.length > MAX_BOOT_DOCUMENT_BYTES) return { bytes: null, error: new ForgeError('LIMIT_EXCEEDED', `${path} is larger than ${MAX_BOOT_DOCUMENT_BYTES} bytes`) };
    return { bytes, error: null };
  } catch (e) {
    return { bytes: null, error: errorOf(e, 'IO_ERROR') };
  }
}

/** A document given in memory: its text's bytes, or the canonical JSON of a value. */
function bytesOfValue(value: unknown): Loaded {
  if (typeof value === 'string') return { bytes: utf8(value), error: null };
  if (value instanceof Uint8Array) return { bytes: value, error: null };
  try {
    return { bytes: canonicalJsonBytes(value), error: null };
  } catch (e) {
    return { bytes: null, error: errorOf(e, 'INVALID_ARGUMENT') };
  }
}

function textOf(bytes: Uint8Array, what: string): string {
  const text = decodeUtf8Strict(bytes);
  if (text === undefined) throw new ForgeError('INVALID_ARGUMENT', `${what} is not valid UTF-8`);
  return text;
}

function checkOptions(options: BootOptions): void {
  if (typeof options !== 'object' || options === null) throw new ForgeError('INVALID_ARGUMENT', 'boot options must be an object');
  if (options.crypto === undefined) throw new ForgeError('INVALID_ARGUMENT', 'boot options.crypto is required', { details: { field: 'crypto' } });
  if (options.kernelKey === undefined || typeof options.kernelKey.sign !== 'function') {
    throw new ForgeError('INVALID_ARGUMENT', 'boot options.kernelKey must be a SigningKey', { details: { field: 'kernelKey' } });
  }
  const hasPath = options.trustRootPath !== undefined;
  const hasDoc = options.trustRoot !== undefined;
  if (hasPath === hasDoc) throw new ForgeError('INVALID_ARGUMENT', 'boot options: give exactly one of trustRootPath and trustRoot', { details: { field: 'trustRootPath' } });
  if (hasPath && (typeof options.trustRootPath !== 'string' || options.trustRootPath === '')) {
    throw new ForgeError('INVALID_ARGUMENT', 'boot options.trustRootPath must be a path', { details: { field: 'trustRootPath' } });
  }
  if (options.golden !== undefined && options.golden !== null && options.goldenPath !== undefined) {
    throw new ForgeError('INVALID_ARGUMENT', 'boot options: give at most one of golden and goldenPath', { details: { field: 'goldenPath' } });
  }
  checkInputs(options.inputs);
  options.inputs.forEach((input, i) => {
    if (input.name === TRUST_ROOT_INPUT) {
      throw new ForgeError('INVALID_ARGUMENT', `boot options.inputs[${i}].name: "${TRUST_ROOT_INPUT}" is measured by boot itself`, { details: { field: `inputs[${i}].name` } });
    }
  });
}

function degradedRefusal(configInput: string, trustRoot: TrustRootCheck, golden: GoldenCheck, differing: readonly DifferingInput[], measured: ReadonlySet<string>): string | null {
  if (!trustRoot.ok) return 'the trust root did not verify, so the signed config cannot be trusted';
  if (golden.status !== 'verified') return 'there are no verified golden values for the config';
  if (!measured.has(configInput)) return `no input named "${configInput}" was measured`;
  if (differing.some((d) => d.name === configInput)) return `the config input "${configInput}" is itself one of the differing inputs`;
  return null;
}

/**
 * The audit event for a boot result: kind `boot`, subject and actor `kernel`, details with the verdict, mode,
 * pcr, quote, differing and unexpected inputs, the checks and reasons, and the event log when the whole event
 * fits the audit log's 64 KiB details (otherwise `eventsOmitted` counts them; the quote's `eventsDigest`
 * still binds them). Lists that alone exceed the budget are cut, with `differingOmitted`/`unexpectedOmitted`.
 * @param result - the boot result (its `audited` field is ignored)
 * @returns the event, ready for `AuditLog.append`
 */
export function bootAuditEvent(result: Omit<BootResult, 'audited'>): BootAuditEvent {
  const plain = (v: unknown): CanonicalValue => JSON.parse(JSON.stringify(v)) as CanonicalValue;
  const base: Record<string, CanonicalValue> = {
    verdict: result.verdict,
    mode: result.mode,
    pcr: result.pcr,
    quote: plain(result.quote),
    differing: plain(result.differing),
    unexpected: plain(result.unexpected),
    trustRoot: plain(result.trustRoot),
    golden: plain(result.golden),
    reasons: plain(result.reasons),
    eventCount: result.events.length,
  };
  const size = (d: Record<string, CanonicalValue>): number => utf8(canonicalJson(d)).length;
  let details: Record<string, CanonicalValue> = { ...base, events: plain(result.events) };
  if (size(details) > AUDIT_DETAILS_BUDGET) {
    details = { ...base, eventsOmitted: result.events.length };
    let differing = [...result.differing];
    let unexpected = [...result.unexpected];
    while (size(details) > AUDIT_DETAILS_BUDGET && (differing.length > 0 || unexpected.length > 0)) {
      if (unexpected.length >= differing.length) unexpected = unexpected.slice(0, Math.floor(unexpected.length / 2));
      else differing = differing.slice(0, Math.floor(differing.length / 2));
      details = {
        ...base,
        eventsOmitted: result.events.length,
        differing: plain(differing),
        unexpected: plain(unexpected),
        differingOmitted: result.differing.length - differing.length,
        unexpectedOmitted: result.unexpected.length - unexpected.length,
      };
    }
  }
  return { kind: 'boot', subject: 'kernel', actor: 'kernel', time: result.time, details };
}

/**
 * Create the measured boot. Boot order: read the trust root once (those bytes are both measured as event 0,
 * `trust-root`, and parsed and verified — against the one boot time, so expiry counts), measure every input
 * (unmeasurable ones are poisoned, never skipped), verify the golden values with the trust root's `boot` role
 * (`root` when there is none), appraise, choose the mode, sign the quote with the kernel key, and send the
 * result to the audit sink.
 *
 * Modes: `verified` runs `normal`; `unknown` runs `normal` (or `recovery` with `requireGolden`); `compromised`
 * runs `recovery` — no workloads, only diagnostics and recovery actions — unless `allowDegraded` is set and
 * the config that set it is itself intact, then `degraded`. A boot whose audit event cannot be recorded runs
 * in `recovery`.
 * @param options - crypto, trust root, inputs, golden values, kernel key, degraded policy, audit sink, clock
 * @returns the boot
 * @throws ForgeError `INVALID_ARGUMENT` for unusable options (no trust root or two, no kernel key, an input named `trust-root`)
 * @example
 * ```ts
 * const boot = createBoot({ crypto, trustRootPath, kernelKey, inputs, goldenPath, audit: (e) => auditLog.append(e) });
 * const result = await boot.boot();
 * assertWorkloadsAllowed(result); // throws BOOT_RECOVERY_MODE in recovery
 * ```
 */
export function createBoot(options: BootOptions): Boot {
  checkOptions(options);
  const { crypto } = options;
  const clock = options.clock ?? systemClock;
  const configInput = options.configInput ?? 'config';

  async function loadTrustRoot(): Promise<Loaded> {
    return options.trustRootPath !== undefined ? readBounded(options.trustRootPath) : bytesOfValue(options.trustRoot);
  }

  async function measureAt(now: number): Promise<BootMeasurement> {
    const loaded = await loadTrustRoot();
    const failures = new Map<string, string>();
    let source: MeasurementSource;
    if (loaded.bytes !== null) source = { bytes: loaded.bytes };
    else {
      source = { bytes: new Uint8Array(0) };
      failures.set(TRUST_ROOT_INPUT, `${loaded.error!.code}: ${loaded.error!.message}`);
    }
    const inputs: MeasurementInput[] = [{ name: TRUST_ROOT_INPUT, kind: 'trust-root', source }, ...options.inputs];
    const log = await measureWithFailures(inputs, { crypto, ...(options.limits === undefined ? {} : { limits: options.limits }) }, failures);

    let trustRoot: TrustRootCheck;
    let trustRootDocument: TrustRootDocument | null = null;
    if (loaded.bytes === null) {
      trustRoot = { ok: false, code: loaded.error!.code, message: `trust root unavailable: ${loaded.error!.message}` };
    } else {
      try {
        const doc = parseTrustRoot(crypto, textOf(loaded.bytes, 'the trust root'));
        const v = verifyTrustRoot(crypto, doc, { now });
        trustRoot = { ok: true, version: doc.signed.version, signers: v.signers };
        trustRootDocument = doc;
      } catch (e) {
        const err = errorOf(e, 'INVALID_ARGUMENT');
        trustRoot = { ok: false, code: err.code, message: err.message };
      }
    }
    return { events: log.events, pcr: log.pcr, trustRoot, trustRootDocument };
  }

  async function loadGolden(trustRootDocument: TrustRootDocument | null): Promise<{ check: GoldenCheck; doc: GoldenDocument | null; digest: string | null }> {
    const configured = options.goldenPath !== undefined || (options.golden !== undefined && options.golden !== null);
    if (!configured) return { check: { status: 'absent' }, doc: null, digest: null };
    if (trustRootDocument === null) return { check: { status: 'unchecked' }, doc: null, digest: null };
    let loaded: Loaded;
    let value: unknown;
    if (options.goldenPath !== undefined) {
      loaded = await readBounded(options.goldenPath);
      value = loaded.bytes === null ? undefined : decodeUtf8Strict(loaded.bytes);
      if (loaded.bytes !== null && value === undefined) loaded = { bytes: loaded.bytes, error: new ForgeError('BOOT_GOLDEN_INVALID', 'the golden measurements file is not valid UTF-8') };
    } else {
      loaded = bytesOfValue(options.golden);
      value = options.golden instanceof Uint8Array ? decodeUtf8Strict(options.golden) : options.golden;
    }
    const digest = loaded.bytes === null ? null : toHex(crypto.sha3_256(loaded.bytes));
    if (loaded.error !== null) return { check: { status: 'invalid', code: loaded.error.code, message: `golden measurements unavailable: ${loaded.error.message}` }, doc: null, digest };
    try {
      const v = verifyGolden(value, trustRootDocument, crypto);
      return { check: { status: 'verified', version: v.doc.signed.version, role: v.role, signers: v.signers }, doc: v.doc, digest };
    } catch (e) {
      const err = errorOf(e, 'INVALID_ARGUMENT');
      return { check: { status: 'invalid', code: err.code, message: err.message }, doc: null, digest };
    }
  }

  async function boot(): Promise<BootResult> {
    const now = Math.floor(clock.now());
    const m = await measureAt(now);
    const golden = await loadGolden(m.trustRootDocument);
    const appraisal = appraise(m.events, golden.doc);
    const differing: DifferingInput[] = [...appraisal.differing];
    const reasons: string[] = [];

    if (!m.trustRoot.ok) {
      reasons.push(`trust root: ${m.trustRoot.message}`);
      if (!differing.some((d) => d.name === TRUST_ROOT_INPUT)) {
        const ev = m.events[0]!;
        differing.unshift({ name: TRUST_ROOT_INPUT, expected: null, actual: ev.poisoned ? 'poison' : ev.digest, reason: 'unverified', error: `${m.trustRoot.code}: ${m.trustRoot.message}` });
      }
    }
    if (golden.check.status === 'invalid') {
      reasons.push(`golden measurements: ${golden.check.message}`);
      differing.push({ name: 'golden', expected: null, actual: golden.digest ?? 'missing', reason: 'unverified', error: `${golden.check.code}: ${golden.check.message}` });
    }
    const compromised = appraisal.verdict === 'compromised' || !m.trustRoot.ok || golden.check.status === 'invalid';
    const verdict = compromised ? 'compromised' : appraisal.verdict;
    if (differing.length > 0) reasons.push(`differing inputs: ${differing.map((d) => `${d.name} (${d.reason})`).join(', ')}`);
    if (appraisal.unexpected.length > 0) reasons.push(`inputs without golden values: ${appraisal.unexpected.join(', ')}`);

    let mode: BootMode;
    if (verdict === 'compromised') {
      if (options.allowDegraded ?? false) {
        const refusal = degradedRefusal(configInput, m.trustRoot, golden.check, differing, new Set(m.events.map((e) => e.name)));
        if (refusal === null) {
          mode = 'degraded';
          reasons.push('compromised, but the signed config allows degraded operation');
        } else {
          mode = 'recovery';
          reasons.push(`degraded operation refused: ${refusal}`);
        }
      } else {
        mode = 'recovery';
      }
    } else if (verdict === 'unknown') {
      mode = (options.requireGolden ?? false) ? 'recovery' : 'normal';
      reasons.push((options.requireGolden ?? false) ? 'no golden measurements, and they are required' : 'no golden measurements: measurements recorded but not appraised');
    } else {
      mode = 'normal';
    }

    const quote = createQuote(m.events, options.kernelKey, crypto, now);
    let result: Omit<BootResult, 'audited'> = {
      verdict,
      mode,
      pcr: m.pcr,
      quote,
      events: m.events,
      differing,
      unexpected: appraisal.unexpected,
      trustRoot: m.trustRoot,
      trustRootDocument: m.trustRootDocument,
      golden: golden.check,
      reasons,
      time: now,
    };
    if (options.audit === undefined) return { ...result, audited: false };
    try {
      await options.audit(bootAuditEvent(result));
      return { ...result, audited: true };
    } catch (e) {
      const err = errorOf(e, 'IO_ERROR');
      result = { ...result, mode: 'recovery', reasons: [...reasons, `the boot event could not be audited (${err.code}: ${err.message}); no workloads run unrecorded`] };
      return { ...result, audited: false };
    }
  }

  return {
    measure: async () => measureAt(Math.floor(clock.now())),
    boot,
  };
}
