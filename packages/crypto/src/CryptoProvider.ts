/** An incremental SHA3-256 computation. */
export interface HashStream {
  /**
   * Feed more bytes.
   * @param data - the next bytes
   * @returns this stream, for chaining
   */
  update(data: Uint8Array): HashStream;
  /**
   * Finish and return the 32-byte digest. The stream cannot be used afterwards.
   * @returns the digest
   */
  digest(): Uint8Array;
}

/** An Ed25519 key pair. `secretKey` is the 32-byte RFC 8032 seed. */
export interface Ed25519KeyPair {
  /** The 32-byte seed. Never print or log it. */
  readonly secretKey: Uint8Array;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/** A secret key imported once for repeated signing (key import can cost more than the signature). */
export interface Signer {
  /**
   * Sign a message (pure Ed25519, RFC 8032).
   * @param message - the message
   * @returns the 64-byte signature
   */
  sign(message: Uint8Array): Uint8Array;
}

/**
 * Hashes, signatures and randomness behind one interface, so the portable and the fast
 * implementation can be swapped without changing any decision: both follow the same
 * Ed25519 verification rule ({@link checkEd25519Encoding}, cofactorless equation), pass the same
 * known-answer vectors, and verify what the other signs.
 *
 * Every method is synchronous and allocation-light; failures of verification return `false`,
 * they never throw.
 */
export interface CryptoProvider {
  /** Short name, e.g. `node` or `noble`. */
  readonly name: string;
  /**
   * SHA3-256 of a byte string.
   * @param data - the bytes
   * @returns the 32-byte digest
   */
  sha3_256(data: Uint8Array): Uint8Array;
  /**
   * Start a streaming SHA3-256.
   * @returns a fresh stream
   */
  createSha3_256(): HashStream;
  /**
   * Generate a new Ed25519 key pair from the provider's secure random source.
   * @returns the pair
   */
  generateEd25519(): Ed25519KeyPair;
  /**
   * Derive the public key of a seed.
   * @param secretKey - 32-byte seed
   * @returns the 32-byte public key
   * @throws ForgeError `CRYPTO_INVALID_KEY` for a wrong length
   */
  ed25519PublicKey(secretKey: Uint8Array): Uint8Array;
  /**
   * Sign a message (pure Ed25519, RFC 8032).
   * @param secretKey - 32-byte seed
   * @param message - the message
   * @returns the 64-byte signature
   * @throws ForgeError `CRYPTO_INVALID_KEY` for a wrong length
   */
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * Import a secret key once for repeated signing.
   * @param secretKey - 32-byte seed (the provider may keep a derived form, never a printable one)
   * @returns a signer
   * @throws ForgeError `CRYPTO_INVALID_KEY` for a wrong length
   */
  createSigner(secretKey: Uint8Array): Signer;
  /**
   * Verify a signature under ForgeOne's Ed25519 rule. Never throws.
   * @param signature - 64 bytes
   * @param message - the signed message
   * @param publicKey - 32 bytes
   * @returns true only when the signature is valid under the rule
   */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /**
   * Cryptographically secure random bytes.
   * @param length - how many
   * @returns fresh random bytes
   */
  randomBytes(length: number): Uint8Array;
}
