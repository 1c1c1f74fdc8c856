import { ForgeError } from './errors.js';

// Semantic Versioning 2.0.0, the regular expression the specification itself suggests.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** A parsed semantic version. */
export interface SemVer {
  /** Major version. */
  readonly major: number;
  /** Minor version. */
  readonly minor: number;
  /** Patch version. */
  readonly patch: number;
  /** Pre-release identifiers (empty for a release). */
  readonly prerelease: readonly (string | number)[];
  /** Build metadata (ignored in comparisons). */
  readonly build: readonly string[];
}

/**
 * Parse a Semantic Versioning 2.0.0 version.
 * @param text - e.g. `1.2.3-rc.1+build.5`
 * @returns the parsed version, or undefined when malformed (or a number part exceeds 2^53)
 */
export function parseSemver(text: string): SemVer | undefined {
  if (typeof text !== 'string' || text.length > 256) return undefined;
  const m = SEMVER.exec(text);
  if (m === null) return undefined;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  const prerelease = m[4] === undefined ? [] : m[4].split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (prerelease.some((p) => typeof p === 'number' && !Number.isSafeInteger(p))) return undefined;
  return { major, minor, patch, prerelease, build: m[5] === undefined ? [] : m[5].split('.') };
}

function cmp(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compare two versions by Semantic Versioning precedence (build metadata ignored).
 * @param a - first version text
 * @param b - second version text
 * @returns negative, zero or positive
 * @throws ForgeError `INVALID_ARGUMENT` when either is not a valid version
 */
export function compareSemver(a: string, b: string): number {
  const x = parseSemver(a);
  const y = parseSemver(b);
  if (x === undefined || y === undefined) {
    throw new ForgeError('INVALID_ARGUMENT', `not a semantic version: ${x === undefined ? a : b}`);
  }
  const core = x.major - y.major || x.minor - y.minor || x.patch - y.patch;
  if (core !== 0) return Math.sign(core);
  if (x.prerelease.length === 0 || y.prerelease.length === 0) {
    return y.prerelease.length - x.prerelease.length === 0 ? 0 : x.prerelease.length === 0 ? 1 : -1;
  }
  for (let i = 0; i < Math.max(x.prerelease.length, y.prerelease.length); i++) {
    const p = x.prerelease[i];
    const q = y.prerelease[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const c = cmp(p, q);
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}
