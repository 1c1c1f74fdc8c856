import { ForgeError } from './errors.js';

/**
 * Ordered trust levels, lowest first. A higher level may do everything a lower one may.
 * `Compromised` never runs anything.
 */
export const TrustLevel = {
  /** Known bad: never runs, every call denied. */
  Compromised: 0,
  /** Nothing known: the default for an unauthenticated subject. */
  Untrusted: 1,
  /** Authenticated, little history. */
  Limited: 2,
  /** Authenticated and signed by trusted keys. */
  Verified: 3,
  /** Verified with a good history. */
  Trusted: 4,
  /** The kernel and the holders of the trust root. */
  Root: 5,
} as const;

/** A trust level's numeric value. */
export type TrustLevel = (typeof TrustLevel)[keyof typeof TrustLevel];

/** A trust level's name. */
export type TrustLevelName = keyof typeof TrustLevel;

const LEVEL_NAMES = Object.keys(TrustLevel) as TrustLevelName[];

/**
 * How far a subject is trusted: an ordered level plus a score in [0, 1] that moves within the level
 * (denials and anomalies lower it; a clean history raises it).
 */
export interface TrustVector {
  /** The ordered level. */
  readonly level: TrustLevel;
  /** A score in [0, 1]. */
  readonly score: number;
}

/**
 * Build a validated trust vector.
 * @param level - a level value or name
 * @param score - a score in [0, 1]; defaults to 0 for Compromised and 1 otherwise
 * @returns a frozen trust vector
 * @throws ForgeError `INVALID_ARGUMENT` for an unknown level or a score outside [0, 1]
 * @example
 * ```ts
 * const tv = trustVector('Verified', 0.8);
 * ```
 */
export function trustVector(level: TrustLevel | TrustLevelName, score?: number): TrustVector {
  const value = typeof level === 'string' ? TrustLevel[level] : level;
  if (value === undefined || !Number.isInteger(value) || value < 0 || value > TrustLevel.Root) {
    throw new ForgeError('INVALID_ARGUMENT', `unknown trust level: ${String(level)}`);
  }
  const s = score ?? (value === TrustLevel.Compromised ? 0 : 1);
  if (!Number.isFinite(s) || s < 0 || s > 1) {
    throw new ForgeError('INVALID_ARGUMENT', `trust score must be in [0, 1], got ${String(score)}`);
  }
  return Object.freeze({ level: value, score: s });
}

/**
 * The name of a trust level.
 * @param level - a level value
 * @returns its name, e.g. `"Verified"`
 */
export function trustLevelName(level: TrustLevel): TrustLevelName {
  const name = LEVEL_NAMES[level];
  if (name === undefined) throw new ForgeError('INVALID_ARGUMENT', `unknown trust level: ${String(level)}`);
  return name;
}

/**
 * Order two trust vectors: by level, then by score.
 * @param a - first vector
 * @param b - second vector
 * @returns negative when `a` is less trusted than `b`, 0 when equal, positive otherwise
 */
export function compareTrust(a: TrustVector, b: TrustVector): number {
  return a.level !== b.level ? a.level - b.level : a.score - b.score;
}

/**
 * Whether a vector meets a minimum level (and optionally a minimum score). Compromised never meets anything.
 * @param tv - the vector to test
 * @param level - the minimum level
 * @param minScore - the minimum score, default 0
 * @returns true when the vector is at least as trusted
 */
export function meetsTrust(tv: TrustVector, level: TrustLevel, minScore = 0): boolean {
  if (tv.level === TrustLevel.Compromised) return false;
  return tv.level > level || (tv.level === level && tv.score >= minScore);
}
