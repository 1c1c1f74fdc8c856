import type { CryptoProvider } from './CryptoProvider.js';

/** One detached signature: the signer's key id (hex) and the 64-byte signature. */
export interface SignatureEntry {
  /** Hex SHA3-256 of the signer's public key. */
  readonly keyId: string;
  /** The signature bytes. */
  readonly signature: Uint8Array;
}

/** Why a signature entry did not count. */
export type SignatureRejection = 'duplicate' | 'revoked' | 'untrusted' | 'invalid';

/** The outcome of counting signatures against a role. */
export interface QuorumOutcome {
  /** Whether at least `threshold` distinct trusted keys signed validly. */
  readonly met: boolean;
  /** The threshold. */
  readonly threshold: number;
  /** Distinct key ids with a valid signature, in the order they appeared. */
  readonly valid: readonly string[];
  /** Entries that did not count, with the reason. */
  readonly rejected: readonly { readonly keyId: string; readonly reason: SignatureRejection }[];
  /** How many entries verified, counting repeats of one key (to tell "repeated" from "too few"). */
  readonly validEntries: number;
}

/**
 * Count the distinct trusted, unrevoked keys whose signature over `message` verifies. A key counts once,
 * however many times it appears; a revoked key never counts, even when the role still lists it.
 * @param provider - verifies signatures
 * @param trusted - the role's keys: key id → public key
 * @param revoked - key ids that never count
 * @param threshold - how many distinct keys are needed
 * @param message - the signed bytes
 * @param entries - the signatures offered
 * @returns what counted and what did not
 */
export function countSignatures(
  provider: CryptoProvider,
  trusted: ReadonlyMap<string, Uint8Array>,
  revoked: ReadonlySet<string>,
  threshold: number,
  message: Uint8Array,
  entries: readonly SignatureEntry[],
): QuorumOutcome {
  const valid: string[] = [];
  const counted = new Set<string>();
  const rejected: { keyId: string; reason: SignatureRejection }[] = [];
  let validEntries = 0;
  for (const entry of entries) {
    const keyId = entry.keyId;
    if (revoked.has(keyId)) {
      rejected.push({ keyId, reason: 'revoked' });
      continue;
    }
    const publicKey = trusted.get(keyId);
    if (publicKey === undefined) {
      rejected.push({ keyId, reason: 'untrusted' });
      continue;
    }
    if (!provider.verify(entry.signature, message, publicKey)) {
      rejected.push({ keyId, reason: 'invalid' });
      continue;
    }
    validEntries++;
    if (counted.has(keyId)) {
      rejected.push({ keyId, reason: 'duplicate' });
      continue;
    }
    counted.add(keyId);
    valid.push(keyId);
  }
  return { met: valid.length >= threshold, threshold, valid, rejected, validEntries };
}

