import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { sha3_256 } from '@noble/hashes/sha3.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { ForgeError, bytesEqual } from '@forgeone/common';
import type { CryptoProvider, Ed25519KeyPair, HashStream, Signer } from './CryptoProvider.js';
import { checkEd25519Encoding } from './ed25519-rule.js';

const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function bytesToNumberLE(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

function checkSeed(secretKey: Uint8Array): void {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw new ForgeError('CRYPTO_INVALID_KEY', 'Ed25519 secret key must be 32 bytes');
  }
}

/**
 * The portable provider: pure JavaScript on @noble/hashes and @noble/ed25519 (audited, no native code).
 * Verification uses noble's curve arithmetic for the same cofactorless equation OpenSSL computes,
 * after ForgeOne's encoding rule, so it agrees with {@link NodeCryptoProvider} on every input.
 *
 * @example
 * ```ts
 * const p = new NobleCryptoProvider();
 * p.sha3_256(new TextEncoder().encode('abc'));
 * ```
 */
export class NobleCryptoProvider implements CryptoProvider {
  /** `noble`. */
  readonly name = 'noble';

  constructor() {
    // noble needs a synchronous SHA-512 for its sync API; give it noble's own.
    if (ed.hashes.sha512 === undefined) ed.hashes.sha512 = sha512;
  }

  /** @inheritDoc */
  sha3_256(data: Uint8Array): Uint8Array {
    return sha3_256(data);
  }

  /** @inheritDoc */
  createSha3_256(): HashStream {
    const h = sha3_256.create();
    const stream: HashStream = {
      update(data: Uint8Array) {
        h.update(data);
        return stream;
      },
      digest: () => h.digest(),
    };
    return stream;
  }

  /** @inheritDoc */
  generateEd25519(): Ed25519KeyPair {
    const secretKey = this.randomBytes(32);
    return { secretKey, publicKey: this.ed25519PublicKey(secretKey) };
  }

  /** @inheritDoc */
  ed25519PublicKey(secretKey: Uint8Array): Uint8Array {
    checkSeed(secretKey);
    return ed.getPublicKey(secretKey);
  }

  /** @inheritDoc */
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
    checkSeed(secretKey);
    return ed.sign(message, secretKey);
  }

  /** @inheritDoc */
  createSigner(secretKey: Uint8Array): Signer {
    checkSeed(secretKey);
    const seed = Uint8Array.from(secretKey);
    return { sign: (message: Uint8Array) => ed.sign(message, seed) };
  }

  /** @inheritDoc */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (!(signature instanceof Uint8Array) || !(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array)) return false;
    if (!checkEd25519Encoding(signature, publicKey)) return false;
    try {
      const A = ed.Point.fromBytes(publicKey, false);
      const r = signature.subarray(0, 32);
      const s = bytesToNumberLE(signature.subarray(32, 64));
      const k = bytesToNumberLE(sha512.create().update(r).update(publicKey).update(message).digest()) % L;
      // Cofactorless: R' = S·B − k·A, compared byte for byte with R (as RFC 8032 5.1.7 and OpenSSL do).
      const sB = s === 0n ? ed.Point.ZERO : ed.Point.BASE.multiply(s);
      const kA = k === 0n ? ed.Point.ZERO : A.multiplyUnsafe(k);
      return bytesEqual(sB.subtract(kA).toBytes(), r);
    } catch {
      return false;
    }
  }

  /** @inheritDoc */
  randomBytes(length: number): Uint8Array {
    return randomBytes(length);
  }
}
