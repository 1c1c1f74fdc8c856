import { describe, expect, it } from 'vitest';
import {
  NobleCryptoProvider,
  SigningKey,
  nextTrustRoot,
  parseTrustRoot,
  signTrustRoot,
  updateTrustRoot,
  verifyTrustRoot,
  type TrustRootDocument,
} from '../src/index.js';
import { DAY, T0, fixture } from './helpers.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe('trust root', () => {
  it('an anchor verifies when a threshold of its own root keys signed it, under either provider', () => {
    const f = fixture({ nRoot: 3, rootThreshold: 2 });
    expect(verifyTrustRoot(f.provider, f.trustRoot, { now: T0 }).signers).toHaveLength(3);
    expect(verifyTrustRoot(new NobleCryptoProvider(), f.trustRoot, { now: T0 }).signers).toHaveLength(3);
    const one = { ...f.trustRoot, signatures: f.trustRoot.signatures.slice(0, 1) };
    expect(codeOf(() => verifyTrustRoot(f.provider, one, { now: T0 }))).toBe('TRUST_ROOT_SIGNATURE');
  });

  it('round-trips through JSON and rejects malformed documents naming the field', () => {
    const f = fixture();
    const text = JSON.stringify(f.trustRoot);
    expect(parseTrustRoot(f.provider, text)).toEqual(f.trustRoot);
    const bad = JSON.parse(text) as { signed: { roles: { packages: { threshold: number } } } };
    bad.signed.roles.packages.threshold = 9;
    expect(() => parseTrustRoot(f.provider, bad)).toThrow(/signed\.roles\.packages\.threshold/);
    const noPkg = JSON.parse(text) as { signed: { roles: Record<string, unknown> } };
    delete noPkg.signed.roles.packages;
    expect(() => parseTrustRoot(f.provider, noPkg)).toThrow(/signed\.roles\.packages/);
    const extra = { ...JSON.parse(text), extra: 1 } as unknown;
    expect(codeOf(() => parseTrustRoot(f.provider, extra))).toBe('TRUST_ROOT_INVALID');
    expect(codeOf(() => parseTrustRoot(f.provider, '{'))).toBe('TRUST_ROOT_INVALID');
  });

  it('a tampered body no longer verifies', () => {
    const f = fixture();
    const doc = structuredClone(f.trustRoot) as TrustRootDocument;
    (doc.signed.roles.packages as { threshold: number }).threshold = 1;
    expect(codeOf(() => verifyTrustRoot(f.provider, doc, { now: T0 }))).toBe('TRUST_ROOT_SIGNATURE');
  });

  it('expires', () => {
    const f = fixture();
    expect(codeOf(() => verifyTrustRoot(f.provider, f.trustRoot, { now: T0 + 366 * DAY }))).toBe('TRUST_ROOT_EXPIRED');
  });

  it('rotation: v2 needs a threshold of v1 root keys and of its own', () => {
    const f = fixture({ nRoot: 2, rootThreshold: 2 });
    const newRoot = [SigningKey.generate(f.provider), SigningKey.generate(f.provider)];
    const unsigned = nextTrustRoot(f.provider, f.trustRoot, { kind: 'rotate', role: 'root', keys: newRoot.map((k) => k.toPublic()), threshold: 2 });
    expect(unsigned.signed.version).toBe(2);

    // Only the new keys: v1's root role did not approve it.
    let onlyNew = unsigned;
    for (const k of newRoot) onlyNew = signTrustRoot(f.provider, onlyNew, k);
    expect(codeOf(() => verifyTrustRoot(f.provider, onlyNew, { now: T0, previous: f.trustRoot }))).toBe('TRUST_ROOT_ROTATION');

    // Old keys only: v2's own root keys did not sign.
    let onlyOld = unsigned;
    for (const k of f.rootKeys) onlyOld = signTrustRoot(f.provider, onlyOld, k);
    expect(codeOf(() => verifyTrustRoot(f.provider, onlyOld, { now: T0, previous: f.trustRoot }))).toBe('TRUST_ROOT_SIGNATURE');

    // One old key of two needed.
    let half = signTrustRoot(f.provider, unsigned, f.rootKeys[0]!);
    for (const k of newRoot) half = signTrustRoot(f.provider, half, k);
    expect(codeOf(() => verifyTrustRoot(f.provider, half, { now: T0, previous: f.trustRoot }))).toBe('TRUST_ROOT_ROTATION');

    let both = onlyOld;
    for (const k of newRoot) both = signTrustRoot(f.provider, both, k);
    const v = verifyTrustRoot(f.provider, both, { now: T0, previous: f.trustRoot });
    expect(v.previousSigners).toHaveLength(2);
    expect(v.signers).toHaveLength(2);

    // Versions never go back, and never skip.
    expect(codeOf(() => verifyTrustRoot(f.provider, f.trustRoot, { now: T0, previous: both }))).toBe('TRUST_ROOT_ROLLBACK');
    const v3 = nextTrustRoot(f.provider, both, { kind: 'set-expiry', expires: '2028-01-01T00:00:00Z' });
    let v4 = nextTrustRoot(f.provider, v3, { kind: 'set-expiry', expires: '2028-01-02T00:00:00Z' });
    for (const k of newRoot) v4 = signTrustRoot(f.provider, v4, k);
    expect(codeOf(() => verifyTrustRoot(f.provider, v4, { now: T0, previous: both }))).toBe('TRUST_ROOT_VERSION');
    let v3s = v3;
    for (const k of newRoot) v3s = signTrustRoot(f.provider, v3s, k);
    expect(updateTrustRoot(f.provider, f.trustRoot, [both, v3s, v4], T0).signed.version).toBe(4);
  });

  it('a revoked key never counts, even if a later version lists it again in a role', () => {
    const f = fixture({ nRoot: 2, rootThreshold: 1 });
    const [a, b] = f.rootKeys as [SigningKey, SigningKey];
    let v2 = nextTrustRoot(f.provider, f.trustRoot, { kind: 'revoke-key', keyId: a.keyId });
    expect(v2.signed.revoked).toEqual([a.keyId]);
    expect(v2.signed.roles.root!.keyIds).toEqual([b.keyId]);
    // a signs v2 alone: a is revoked in v2, so its approval does not count as v1's root either.
    const byA = signTrustRoot(f.provider, v2, a);
    expect(codeOf(() => verifyTrustRoot(f.provider, byA, { now: T0, previous: f.trustRoot }))).toBe('TRUST_ROOT_ROTATION');
    v2 = signTrustRoot(f.provider, v2, b);
    verifyTrustRoot(f.provider, v2, { now: T0, previous: f.trustRoot });
    // Re-adding a revoked key is refused outright...
    expect(codeOf(() => nextTrustRoot(f.provider, v2, { kind: 'add-key', role: 'root', key: a.toPublic() }))).toBe('TRUST_ROOT_INVALID');
    // ...and a hand-made document that lists it in a role still never counts its signature.
    const forged = structuredClone(v2) as TrustRootDocument;
    (forged.signed as { version: number }).version = 3;
    (forged.signed.roles.root as { keyIds: string[] }).keyIds = [a.keyId, b.keyId].sort();
    const bySignerA = signTrustRoot(f.provider, { ...forged, signatures: [] }, a);
    expect(codeOf(() => verifyTrustRoot(f.provider, bySignerA, { now: T0, previous: v2 }))).toBe('TRUST_ROOT_ROTATION');
  });

  it('add-key adds to a role and can raise its threshold', () => {
    const f = fixture({ nPkg: 2, k: 2 });
    const extra = SigningKey.generate(f.provider);
    const v2 = nextTrustRoot(f.provider, f.trustRoot, { kind: 'add-key', role: 'packages', key: extra.toPublic(), threshold: 3 });
    expect(v2.signed.roles.packages!.keyIds).toContain(extra.keyId);
    expect(v2.signed.roles.packages!.threshold).toBe(3);
    const policy = nextTrustRoot(f.provider, v2, { kind: 'add-key', role: 'policy', key: extra.toPublic() });
    expect(policy.signed.roles.policy!.threshold).toBe(1);
  });
});
