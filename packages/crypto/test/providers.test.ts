import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { fromHex, toHex, utf8 } from '@forgeone/common';
import { NobleCryptoProvider, NodeCryptoProvider, SMALL_ORDER_Y, checkEd25519Encoding, publicKeyInfo, type CryptoProvider } from '../src/index.js';

interface Rfc8032 { name: string; secretKey: string; publicKey: string; message: string; signature: string }
interface Edge { index: number; message: string; publicKey: string; signature: string; description: string; nodeAccepts: boolean }
interface Sha3 { name: string; messageHex?: string; repeatByte?: string; repeatCount?: number; digest: string }

const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8')) as T;
const rfc = load<Rfc8032[]>('rfc8032-ed25519.json');
const edges = load<Edge[]>('ed25519-edge-cases.json');
const sha3 = load<Sha3[]>('sha3-256.json');

const providers: CryptoProvider[] = [new NodeCryptoProvider(), new NobleCryptoProvider()];
const [node, noble] = providers as [CryptoProvider, CryptoProvider];
ed.hashes.sha512 ??= sha512;

function message(v: Sha3): Uint8Array {
  if (v.repeatByte !== undefined) return new Uint8Array(v.repeatCount!).fill(parseInt(v.repeatByte, 16));
  return fromHex(v.messageHex!);
}

describe.each(providers)('$name provider: known answers', (p) => {
  it('SHA3-256 matches the NIST vectors, one-shot and streamed in uneven chunks', () => {
    expect(sha3.length).toBeGreaterThan(40);
    for (const v of sha3) {
      const m = message(v);
      expect(toHex(p.sha3_256(m)), v.name).toBe(v.digest);
      const s = p.createSha3_256();
      for (let i = 0; i < m.length; ) {
        const n = Math.min(m.length - i, 1 + ((i * 7919) % 4093));
        s.update(m.subarray(i, i + n));
        i += n;
      }
      expect(toHex(s.digest()), `${v.name} streamed`).toBe(v.digest);
    }
  });

  it('Ed25519 matches RFC 8032 section 7.1 (public key, signature, verification)', () => {
    expect(rfc.length).toBe(5);
    for (const v of rfc) {
      const sk = fromHex(v.secretKey);
      const msg = fromHex(v.message);
      expect(toHex(p.ed25519PublicKey(sk)), v.name).toBe(v.publicKey);
      expect(toHex(p.sign(sk, msg)), v.name).toBe(v.signature);
      expect(p.verify(fromHex(v.signature), msg, fromHex(v.publicKey)), v.name).toBe(true);
      const bad = fromHex(v.signature);
      bad[5]! ^= 1;
      expect(p.verify(bad, msg, fromHex(v.publicKey)), `${v.name} flipped`).toBe(false);
    }
  });

  it('decides the twelve edge cases of "Taming the many EdDSAs" by the ForgeOne rule', () => {
    expect(edges.length).toBe(12);
    for (const v of edges) {
      // Only case 3 (mixed-order A and R, both canonical, not small order, cofactorless equation holds) passes
      // the provider rule; trust roots refuse such keys (publicKeyInfo), so it can never count in a quorum.
      expect(p.verify(fromHex(v.signature), fromHex(v.message), fromHex(v.publicKey)), `case ${v.index}: ${v.description}`).toBe(v.index === 3);
    }
  });

  it('admits no edge-case key (small order, mixed order, non-canonical) as a trusted key', () => {
    for (const v of edges) {
      // Cases 6 and 7 have an honest, prime-order key (their fault is S); every other key is small, mixed or non-canonical.
      if (v.index === 6 || v.index === 7) expect(publicKeyInfo(p, fromHex(v.publicKey)).keyId).toHaveLength(64);
      else expect(() => publicKeyInfo(p, fromHex(v.publicKey)), `case ${v.index}`).toThrow(/acceptable/);
    }
    expect(publicKeyInfo(p, fromHex(rfc[0]!.publicKey)).keyId).toHaveLength(64);
  });

  it('never throws on malformed input', () => {
    const pk = fromHex(rfc[0]!.publicKey);
    expect(p.verify(new Uint8Array(63), new Uint8Array(), pk)).toBe(false);
    expect(p.verify(new Uint8Array(64), new Uint8Array(), new Uint8Array(31))).toBe(false);
    expect(p.verify('x' as unknown as Uint8Array, new Uint8Array(), pk)).toBe(false);
    expect(() => p.sign(new Uint8Array(31), new Uint8Array())).toThrow(/32 bytes/);
  });

  it('random bytes are fresh', () => {
    expect(p.randomBytes(32)).not.toEqual(p.randomBytes(32));
    expect(p.randomBytes(7)).toHaveLength(7);
  });
});

describe('the two providers agree', () => {
  it('what one signs the other verifies', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (sk, msg) => {
        const pk = node.ed25519PublicKey(sk);
        expect(noble.ed25519PublicKey(sk)).toEqual(pk);
        const s1 = node.sign(sk, msg);
        const s2 = noble.sign(sk, msg);
        expect(s1).toEqual(s2);
        expect(node.createSigner(sk).sign(msg)).toEqual(s1);
        expect(noble.createSigner(sk).sign(msg)).toEqual(s1);
        expect(noble.verify(s1, msg, pk)).toBe(true);
        expect(node.verify(s2, msg, pk)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('give the same answer on mutated signatures, keys and messages', () => {
    const sk = fromHex(rfc[2]!.secretKey);
    const pk = node.ed25519PublicKey(sk);
    const msg = utf8('forgeone');
    const sig = node.sign(sk, msg);
    fc.assert(
      fc.property(fc.nat(95), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const s = Uint8Array.from(sig);
        const k = Uint8Array.from(pk);
        if (pos < 64) s[pos]! ^= x;
        else k[pos - 64]! ^= x;
        expect(node.verify(s, msg, k)).toBe(noble.verify(s, msg, k));
        expect(node.verify(s, msg, k)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('S + L (a non-canonical scalar that OpenSSL and noble both compute with) is rejected by both', () => {
    const sk = fromHex(rfc[0]!.secretKey);
    const msg = utf8('malleable');
    const sig = node.sign(sk, msg);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    let t = s + L;
    const mall = Uint8Array.from(sig);
    for (let i = 32; i < 64; i++) {
      mall[i] = Number(t & 0xffn);
      t >>= 8n;
    }
    for (const p of providers) expect(p.verify(mall, msg, node.ed25519PublicKey(sk)), p.name).toBe(false);
  });

  it('a signature whose R carries a torsion component is rejected by both (cofactorless), though a cofactored verifier accepts it', () => {
    // Build R' = r·B + T8 and S = r + k·a, where T8 has order 8: the cofactored equation holds, the cofactorless one does not.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const leNum = (b: Uint8Array) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
    const numLe = (n: bigint) => {
      const out = new Uint8Array(32);
      for (let i = 0; i < 32; i++) {
        out[i] = Number(n & 0xffn);
        n >>= 8n;
      }
      return out;
    };
    const ext = ed.utils.getExtendedPublicKey(fromHex(rfc[1]!.secretKey));
    const T8 = ed.Point.fromBytes(SMALL_ORDER_Y[3]!);
    expect(T8.multiply(8n, false).is0() && !T8.multiply(4n, false).is0()).toBe(true);
    const msg = utf8('torsion');
    const r = 123456789n;
    const R = ed.Point.BASE.multiply(r).add(T8).toBytes();
    const k = leNum(sha512(new Uint8Array([...R, ...ext.pointBytes, ...msg]))) % L;
    const S = (r + k * ext.scalar) % L;
    const sig = new Uint8Array([...R, ...numLe(S)]);
    expect(checkEd25519Encoding(sig, ext.pointBytes)).toBe(true);
    expect(ed.verify(sig, msg, ext.pointBytes, { zip215: true })).toBe(true);
    expect(node.verify(sig, msg, ext.pointBytes)).toBe(false);
    expect(noble.verify(sig, msg, ext.pointBytes)).toBe(false);
  });

  it('the small-order blocklist is exactly the y coordinates of the eight small-order points', () => {
    const T8 = ed.Point.fromBytes(SMALL_ORDER_Y[3]!);
    const ys = new Set<string>();
    let Q = ed.Point.ZERO;
    for (let i = 0; i < 8; i++) {
      const b = Q.toBytes();
      b[31]! &= 0x7f;
      ys.add(toHex(b));
      Q = Q.add(T8);
    }
    expect([...ys].sort()).toEqual(SMALL_ORDER_Y.map(toHex).sort());
  });
});
