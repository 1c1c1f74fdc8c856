/**
 * ForgeOne's one Ed25519 verification rule, shared by every provider so that a quorum's outcome
 * never depends on which provider is loaded. See docs/crypto.md.
 *
 * A signature (R ‖ S) on message M under public key A is valid only when:
 * 1. the signature is 64 bytes and the key 32 bytes;
 * 2. S is canonical: S < L (the group order);
 * 3. A and R are canonical encodings: the y coordinate (low 255 bits) is below p = 2^255 − 19;
 * 4. neither A nor R is a point of small order (order 1, 2, 4 or 8);
 * 5. the cofactorless equation holds with a byte comparison: encode(S·B − H(R‖A‖M)·A) = R.
 *
 * Points 1–4 are checked here, before any provider runs; point 5 is what both OpenSSL (node:crypto)
 * and ForgeOne's noble path compute. Mixed-order keys are therefore handled identically.
 * @packageDocumentation
 */

/** The Ed25519 group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const L_BYTES = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
]);

/** p = 2^255 − 19, little-endian. */
const P_BYTES = Uint8Array.from([
  0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
]);

function hex(h: string): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * The y coordinates (little-endian, sign bit clear) of the eight points of small order:
 * 0, 1, p − 1 and the two y values of the order-8 points. Checked in the tests against points
 * computed from the curve.
 */
export const SMALL_ORDER_Y: readonly Uint8Array[] = [
  hex('0000000000000000000000000000000000000000000000000000000000000000'),
  hex('0100000000000000000000000000000000000000000000000000000000000000'),
  hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'),
  hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'),
  hex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'),
];

/** Little-endian a < b over `len` bytes, with a's byte 31 optionally masked to 7 bits. */
function lessThan(a: Uint8Array, offset: number, b: Uint8Array, maskTop: boolean): boolean {
  for (let i = 31; i >= 0; i--) {
    const x = i === 31 && maskTop ? a[offset + i]! & 0x7f : a[offset + i]!;
    const y = b[i]!;
    if (x !== y) return x < y;
  }
  return false;
}

function isSmallOrderY(a: Uint8Array, offset: number): boolean {
  outer: for (const y of SMALL_ORDER_Y) {
    for (let i = 0; i < 32; i++) {
      const x = i === 31 ? a[offset + i]! & 0x7f : a[offset + i]!;
      if (x !== y[i]) continue outer;
    }
    return true;
  }
  return false;
}

/**
 * Whether a 32-byte point encoding is acceptable as a public key or as R: canonical (y < p) and not of small order.
 * @param bytes - buffer holding the encoding
 * @param offset - where the 32 bytes start
 * @returns true when acceptable
 */
export function isAcceptablePointEncoding(bytes: Uint8Array, offset = 0): boolean {
  if (bytes.length < offset + 32) return false;
  return lessThan(bytes, offset, P_BYTES, true) && !isSmallOrderY(bytes, offset);
}

/**
 * Whether the 32-byte scalar S at `offset` is canonical (S < L).
 * @param bytes - buffer holding S
 * @param offset - where S starts
 * @returns true when S < L
 */
export function isCanonicalScalar(bytes: Uint8Array, offset = 0): boolean {
  if (bytes.length < offset + 32) return false;
  return lessThan(bytes, offset, L_BYTES, false);
}

/**
 * The encoding checks of ForgeOne's Ed25519 rule (points 1–4 above). Every provider calls this before
 * its own verification equation; a failure means the signature is invalid.
 * @param signature - R ‖ S, 64 bytes
 * @param publicKey - A, 32 bytes
 * @returns true when the encodings are acceptable
 */
export function checkEd25519Encoding(signature: Uint8Array, publicKey: Uint8Array): boolean {
  return (
    signature.length === 64 &&
    publicKey.length === 32 &&
    isCanonicalScalar(signature, 32) &&
    isAcceptablePointEncoding(publicKey, 0) &&
    isAcceptablePointEncoding(signature, 0)
  );
}
