import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isForgeError } from '@forgeone/common';
import { createPackageVerifier, parsePackage } from '../src/index.js';
import { fixture, samplePackage } from './helpers.js';

// Every byte of a package is covered by something: header bytes are fixed, lengths must add up exactly, the
// manifest is signed, content is hashed, and all three signatures are needed for the 3-of-5 quorum. So every
// mutation must fail, and none may escape as anything but a ForgeError result.
const f = fixture({ nPkg: 5, k: 3 });
const good = samplePackage(f, f.packageKeys.slice(0, 3));
const verifier = createPackageVerifier({ provider: f.provider, trustRoot: f.trustRoot, clock: f.clock });

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'splice'; from: number; to: number; count: number }
  | { kind: 'length'; at: number; value: number };

function apply(src: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = Uint8Array.from(src);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : ('at' in m ? m.at : 0) % b.length;
    switch (m.kind) {
      case 'flip':
        if (b.length) b[at]! ^= m.xor;
        break;
      case 'set':
        if (b.length) b[at] = m.value;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
        break;
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.count)]);
        break;
      case 'splice': {
        if (!b.length) break;
        const from = m.from % b.length;
        const to = m.to % b.length;
        b.copyWithin(to, from, Math.min(b.length, from + m.count));
        break;
      }
      case 'length': {
        // Overwrite 4 bytes with a big-endian integer: aims at the length fields.
        for (let i = 0; i < 4 && at + i < b.length; i++) b[at + i] = (m.value >>> (24 - 8 * i)) & 0xff;
        break;
      }
    }
  }
  return b;
}

const len = good.length;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(len - 1), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(len - 1), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(len - 1) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(len), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(len - 1), count: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('splice' as const), from: fc.nat(len - 1), to: fc.nat(len - 1), count: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('length' as const), at: fc.nat(len - 1), value: fc.oneof(fc.nat(), fc.constant(0xffffffff), fc.constant(0), fc.nat(len * 2)) }),
);

describe('.forgepkg mutation property', () => {
  it('the unmutated package verifies', () => {
    expect(verifier.verify(good).ok).toBe(true);
  });

  it('10,000 mutations: none crashes the parser or the verifier, none verifies', () => {
    const codes = new Map<string, number>();
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
        const bytes = apply(good, ms);
        fc.pre(Buffer.compare(Buffer.from(bytes), Buffer.from(good)) !== 0);
        const parsed = parsePackage(bytes);
        if (!parsed.ok) expect(isForgeError(parsed.error)).toBe(true);
        const r = verifier.verify(bytes);
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(isForgeError(r.error)).toBe(true);
          codes.set(r.error.code, (codes.get(r.error.code) ?? 0) + 1);
        }
      }),
      { numRuns: 10_000 },
    );
    // The mutations reach deep: many distinct failure codes, not only the first check.
    expect(codes.size).toBeGreaterThanOrEqual(8);
  });
});
