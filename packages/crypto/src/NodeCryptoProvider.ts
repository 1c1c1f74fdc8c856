import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { ForgeError } from '@forgeone/common';
import type { CryptoProvider, Ed25519KeyPair, HashStream, Signer } from './CryptoProvider.js';
import { checkEd25519Encoding } from './ed25519-rule.js';

const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

function view(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function privateKeyObject(seed: Uint8Array): KeyObject {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new ForgeError('CRYPTO_INVALID_KEY', 'Ed25519 secret key must be 32 bytes');
  const der = Buffer.alloc(48);
  der.set(PKCS8_PREFIX, 0);
  der.set(seed, 16);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** Options for {@link NodeCryptoProvider}. */
export interface NodeCryptoProviderOptions {
  /** How many imported public keys to keep (verification of the same keys is the common case). Default 256. */
  readonly publicKeyCacheSize?: number;
}

/**
 * The fast provider: node:crypto (OpenSSL) for SHA3-256 and Ed25519, with ForgeOne's encoding rule
 * applied before OpenSSL's cofactorless verification.
 *
 * @example
 * ```ts
 * const p = new NodeCryptoProvider();
 * const { secretKey, publicKey } = p.generateEd25519();
 * p.verify(p.sign(secretKey, msg), msg, publicKey); // true
 * ```
 */
export class NodeCryptoProvider implements CryptoProvider {
  /** `node`. */
  readonly name = 'node';
  readonly #keys = new Map<string, KeyObject>();
  readonly #cacheSize: number;

  /** @param options - cache size */
  constructor(options: NodeCryptoProviderOptions = {}) {
    this.#cacheSize = options.publicKeyCacheSize ?? 256;
  }

  /** @inheritDoc */
  sha3_256(data: Uint8Array): Uint8Array {
    return view(createHash('sha3-256').update(data).digest());
  }

  /** @inheritDoc */
  createSha3_256(): HashStream {
    const h = createHash('sha3-256');
    const stream: HashStream = {
      update(data: Uint8Array) {
        h.update(data);
        return stream;
      },
      digest: () => view(h.digest()),
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
    const spki = createPublicKey(privateKeyObject(secretKey)).export({ format: 'der', type: 'spki' });
    return Uint8Array.from(spki.subarray(12));
  }

  /** @inheritDoc */
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
    return view(sign(null, message, privateKeyObject(secretKey)));
  }

  /** @inheritDoc */
  createSigner(secretKey: Uint8Array): Signer {
    const key = privateKeyObject(secretKey);
    return { sign: (message: Uint8Array) => view(sign(null, message, key)) };
  }

  /** @inheritDoc */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (!(signature instanceof Uint8Array) || !(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array)) return false;
    if (!checkEd25519Encoding(signature, publicKey)) return false;
    try {
      return verify(null, message, this.#publicKeyObject(publicKey), signature);
    } catch {
      return false;
    }
  }

  /** @inheritDoc */
  randomBytes(length: number): Uint8Array {
    return view(randomBytes(length));
  }

  #publicKeyObject(publicKey: Uint8Array): KeyObject {
    const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, 32).toString('hex');
    let key = this.#keys.get(id);
    if (key === undefined) {
      const der = Buffer.alloc(44);
      der.set(SPKI_PREFIX, 0);
      der.set(publicKey, 12);
      key = createPublicKey({ key: der, format: 'der', type: 'spki' });
      if (this.#keys.size >= this.#cacheSize) this.#keys.delete(this.#keys.keys().next().value as string);
      this.#keys.set(id, key);
    }
    return key;
  }
}
