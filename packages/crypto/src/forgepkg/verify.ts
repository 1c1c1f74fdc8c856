import { ForgeError, bytesEqual, compareSemver, fromHex, systemClock, toHex, type Clock, type Result } from '@forgeone/common';
import type { CryptoProvider } from '../CryptoProvider.js';
import { countSignatures, type QuorumOutcome } from '../quorum.js';
import type { TrustState } from '../state.js';
import { roleKeys, verifyTrustRoot, type TrustRootDocument } from '../trust-root.js';
import { DEFAULT_PACKAGE_LIMITS, packageSigningBytes, parsePackage, type PackageLimits, type ParsedPackage } from './format.js';
import type { Manifest } from './manifest.js';

/** A package that passed every check. */
export interface VerifiedPackage {
  /** The manifest. */
  readonly manifest: Manifest;
  /** Content files (views into the verified bytes). */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Distinct trusted keys whose signatures verified. */
  readonly signers: readonly string[];
  /** The threshold of the `packages` role. */
  readonly threshold: number;
  /** SHA3-256 of the signed manifest bytes, hex: the package's identity. */
  readonly digest: string;
  /** The time the verification was judged at (ms since the epoch). */
  readonly verifiedAt: number;
}

/** Options for one verification. */
export interface VerifyPackageOptions {
  /** The role whose keys must sign. Default `packages`. */
  readonly role?: string;
  /**
   * Rollback state; when given, a package version lower than the highest accepted fails with `PKG_ROLLBACK`
   * and a trust root older than the highest accepted fails with `TRUST_ROOT_ROLLBACK`. Recording an accepted
   * version is the caller's step (`recordPackageVersion`, `recordRootVersion`), once it acts on the package.
   */
  readonly state?: TrustState;
  /** Allowed clock skew for `created` in the future, ms. Default 5 minutes. */
  readonly clockSkewMs?: number;
  /** Called after each content file is hashed, for progress displays. */
  readonly onProgress?: (done: number, total: number, name: string) => void;
}

/**
 * Verifies `.forgepkg` packages against a trust root.
 */
export interface PackageVerifier {
  /**
   * Verify a package. Expected failures are returned, never thrown.
   * @param bytes - the whole `.forgepkg` file
   * @param options - role, rollback state, clock skew
   * @returns the verified package, or a ForgeError with its code
   */
  verify(bytes: Uint8Array, options?: VerifyPackageOptions): Result<VerifiedPackage>;
}

/** Dependencies of {@link createPackageVerifier}. */
export interface PackageVerifierDeps {
  /** Verifies signatures and hashes content. */
  readonly provider: CryptoProvider;
  /** The trust root (already parsed; it is verified again at every call against the same start time). */
  readonly trustRoot: TrustRootDocument;
  /** The time source; one reading is taken when each verification begins. Default the system clock. */
  readonly clock?: Clock;
  /** Parsing limits. */
  readonly limits?: PackageLimits;
}

function quorumFailure(q: QuorumOutcome, entries: number): ForgeError {
  const counts = { duplicate: 0, revoked: 0, untrusted: 0, invalid: 0 };
  for (const r of q.rejected) counts[r.reason]++;
  const details = { signers: q.valid, threshold: q.threshold, rejected: q.rejected };
  const have = `${q.valid.length} distinct trusted signature(s) of ${q.threshold} required`;
  if (entries === 0) return new ForgeError('PKG_UNSIGNED', 'package carries no signatures', { details });
  if (counts.duplicate > 0 && q.validEntries >= q.threshold) {
    return new ForgeError('PKG_SIGNATURE_DUPLICATE', `${have}: a key signed more than once and counts once`, { details });
  }
  if (counts.invalid > 0) return new ForgeError('PKG_SIGNATURE_INVALID', `${have}: ${counts.invalid} signature(s) do not verify`, { details });
  if (counts.revoked > 0) return new ForgeError('PKG_SIGNER_REVOKED', `${have}: ${counts.revoked} signature(s) from revoked keys`, { details });
  if (counts.untrusted > 0) return new ForgeError('PKG_SIGNER_UNTRUSTED', `${have}: ${counts.untrusted} signature(s) from keys not trusted for packages`, { details });
  return new ForgeError('PKG_QUORUM_NOT_MET', have, { details });
}

/**
 * Check a parsed package against a trust root at one instant `now`: quorum, validity window, rollback,
 * content hashes. Exposed for callers that parse once and verify under several roots.
 * @param provider - the provider
 * @param trustRoot - a verified trust root
 * @param pkg - the parsed package
 * @param now - the one start time
 * @param options - role, state, skew
 * @returns the verified package, or the first failure
 */
export function verifyParsedPackage(
  provider: CryptoProvider,
  trustRoot: TrustRootDocument,
  pkg: ParsedPackage,
  now: number,
  options: VerifyPackageOptions = {},
): Result<VerifiedPackage> {
  const role = options.role ?? 'packages';
  const { manifest } = pkg;
  const signed = trustRoot.signed;
  const threshold = signed.roles[role]?.threshold;
  if (threshold === undefined) return { ok: false, error: new ForgeError('TRUST_ROLE_UNKNOWN', `trust root has no role "${role}"`) };

  // 1. Quorum over the canonical manifest bytes: nothing in the manifest is believed before this.
  const q = countSignatures(provider, roleKeys(signed, role), new Set(signed.revoked), threshold, packageSigningBytes(pkg.manifestBytes), pkg.signatures);
  if (!q.met) return { ok: false, error: quorumFailure(q, pkg.signatures.length) };
  const id = `${manifest.name}@${manifest.version}`;

  // 2. Validity window, judged against the one start time.
  const skew = options.clockSkewMs ?? 5 * 60_000;
  if (Date.parse(manifest.created) > now + skew) {
    return { ok: false, error: new ForgeError('PKG_NOT_YET_VALID', `${id} was created at ${manifest.created}, in the future`, { details: { created: manifest.created, now: new Date(now).toISOString() } }) };
  }
  if (Date.parse(manifest.expires) <= now) {
    return { ok: false, error: new ForgeError('PKG_EXPIRED', `${id} expired at ${manifest.expires}`, { details: { expires: manifest.expires, now: new Date(now).toISOString() } }) };
  }

  // 3. Rollback: never accept a version below the highest one accepted for this name.
  const highest = options.state?.highestPackageVersion(manifest.name);
  if (highest !== undefined && compareSemver(manifest.version, highest) < 0) {
    return { ok: false, error: new ForgeError('PKG_ROLLBACK', `${id} is older than ${highest}, already accepted`, { details: { offered: manifest.version, highest } }) };
  }

  // 4. Content: every file's SHA3-256 must match the signed manifest.
  let done = 0;
  for (const [name, content] of pkg.files) {
    options.onProgress?.(++done, pkg.files.size, name);
    const want = fromHex(manifest.files[name]!.sha3_256);
    if (!bytesEqual(provider.sha3_256(content), want)) {
      return { ok: false, error: new ForgeError('PKG_HASH_MISMATCH', `${name} does not match its SHA3-256 in the manifest`, { details: { file: name } }) };
    }
  }

  return {
    ok: true,
    value: { manifest, files: pkg.files, signers: q.valid, threshold, digest: toHex(provider.sha3_256(pkg.manifestBytes)), verifiedAt: now },
  };
}

/**
 * Create the default package verifier. Each call of `verify` takes one reading of the clock and judges the
 * trust root's and the package's expiry against it.
 * @param deps - provider, trust root, clock, limits
 * @returns a verifier
 * @example
 * ```ts
 * const verifier = createPackageVerifier({ provider, trustRoot });
 * const r = verifier.verify(await readFile('hello.forgepkg'));
 * if (!r.ok) console.error(r.error.code); // e.g. PKG_QUORUM_NOT_MET
 * ```
 */
export function createPackageVerifier(deps: PackageVerifierDeps): PackageVerifier {
  const clock = deps.clock ?? systemClock;
  const limits = deps.limits ?? DEFAULT_PACKAGE_LIMITS;
  return {
    verify(bytes, options = {}) {
      const now = clock.now();
      try {
        verifyTrustRoot(deps.provider, deps.trustRoot, { now });
      } catch (e) {
        return { ok: false, error: e as ForgeError };
      }
      const highestRoot = options.state?.highestRootVersion();
      if (highestRoot !== undefined && deps.trustRoot.signed.version < highestRoot) {
        return {
          ok: false,
          error: new ForgeError('TRUST_ROOT_ROLLBACK', `trust root v${deps.trustRoot.signed.version} is older than v${highestRoot}, already accepted`, {
            details: { offered: deps.trustRoot.signed.version, current: highestRoot },
          }),
        };
      }
      const parsed = parsePackage(bytes, limits);
      if (!parsed.ok) return parsed;
      try {
        return verifyParsedPackage(deps.provider, deps.trustRoot, parsed.value, now, options);
      } catch (e) {
        return { ok: false, error: e instanceof ForgeError ? e : new ForgeError('INTERNAL', (e as Error).message, { cause: e }) };
      }
    },
  };
}
